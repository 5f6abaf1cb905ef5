"""Benchmarks for scratch_dl: notebook test times, bare training runs, training-loop speed and import times.

Run by hand from the project root (not part of the test suite; nothing here asserts on timings):

    SCRATCH_DL_DATA=/path/to/offline/data python benchmarks/run.py

`SCRATCH_DL_DATA` is only needed on offline machines (see README, "Data"). The report is printed and written
to `benchmarks/results.md`; progress goes to stderr. It takes a few minutes on 2 CPU cores."""
import datetime, json, os, platform, subprocess, sys, time
from importlib.metadata import version
from pathlib import Path
import pandas as pd
from scratch_dl.cli import markdown_table  # the same Markdown tables as `scratch_dl results --out`

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NBDEV_TEST = str(Path(PY).parent/'nbdev-test')
NOTEBOOKS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
GROUPS = dict(mnist=['01_pixel_baseline', '02_mnist_sgd', '05_basic_optim', '06_learner'],
              titanic=['03_titanic_linear', '04_titanic_neural_net'])
os.environ.setdefault('MPLBACKEND', 'Agg')  # as .ci/run does

def log(*a): print(*a, file=sys.stderr, flush=True)

def run(cmd):
    "Run `cmd` from the project root; return `(seconds, stdout)`, raising with its output if it fails"
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    secs = time.perf_counter() - start
    if p.returncode: raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return secs, p.stdout

def table(headers, rows): return markdown_table(pd.DataFrame(rows, columns=headers))

def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines()
                if l.startswith('model name')), platform.processor() or 'unknown')
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    return (f"# scratch_dl benchmarks, {now}\n\n"
            f"Machine: {platform.platform()}, {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"torch {version('torch')}, fastai {version('fastai')}, nbdev {version('nbdev')}. "
            f"SCRATCH_DL_DATA={os.environ.get('SCRATCH_DL_DATA', '(unset)')}\n")

def part1_notebooks():
    "Each notebook alone under nbdev-test, then the whole series as CI runs it"
    times = {}
    for nb in NOTEBOOKS:
        log('nbdev-test', nb)
        times[nb.removesuffix('.ipynb')] = run([NBDEV_TEST, f'nbs/{nb}'])[0]
    log('nbdev-test --n-workers 2')
    series = run([NBDEV_TEST, '--n-workers', '2'])[0]
    rows = [(f'nbs/{k}.ipynb', f'{v:.1f}') for k,v in sorted(times.items(), key=lambda kv: -kv[1])]
    rows += [('**sum, one at a time**', f'**{sum(times.values()):.1f}**'), ('**series, `--n-workers 2`**', f'**{series:.1f}**')]
    return ('## 1. Notebooks under nbdev-test (wall s, slowest first)\n\n'
            'Each includes nbdev-test start-up and the notebook\'s own imports (index.ipynb imports nothing heavy).\n\n' + table(['notebook', 'seconds'], rows)), times, series

BARE = """import json, time; t0 = time.perf_counter()
from scratch_dl.cli import run_series; t1 = time.perf_counter()
tab, _ = run_series(only={only!r}, quiet=True)
print(json.dumps(dict(imp=t1-t0, run=time.perf_counter()-t1, rows=tab.to_dict('records'))))"""

def part2_bare(nb_times, series):
    "`run_series` in a fresh subprocess per dataset, compared with the notebooks covering the same models"
    rows, models = [], []
    for only in ('mnist', 'titanic', None):
        log('bare run_series', only)
        secs, out = run([PY, '-c', BARE.format(only=only)])
        r = json.loads(out.strip().splitlines()[-1])
        nbs = sum(nb_times[n] for n in GROUPS[only]) if only else sum(nb_times.values())
        rows.append((only or 'all', f'{secs:.1f}', f"{r['imp']:.1f}", f"{r['run']:.1f}", f"{secs-r['imp']-r['run']:.1f}",
                     f'{nbs:.1f}', f'{nbs/secs:.1f}x'))
        if only is None:
            rows.append(('all vs CI (`--n-workers 2`)', *rows[-1][1:5], f'{series:.1f}', f'{series/secs:.1f}x'))
            models = [(m['dataset'], m['model'], m['epochs'], m['accuracy'], m['seconds']) for m in r['rows']]
    return ('## 2. Bare runs (`run_series` in a fresh subprocess) vs notebooks\n\n'
            '`rest` is interpreter start-up and exit. Notebooks (sum of the one-at-a-time times): mnist = 01, 02, 05, 06; '
            'titanic = 03, 04; all = every notebook. Image decoding is inside the first model (L1 baseline).\n\n'
            + table(['dataset', 'subprocess s', 'import s', 'run_series s', 'rest s', 'notebooks s', 'series/bare'], rows)
            + '\nPer model, from the `all` run:\n\n' + table(['dataset', 'model', 'epochs', 'accuracy', 'seconds'], models))

def part3_loops(epochs=5, bs=256):
    "Epochs/s (train + validate) of the MNIST linear model, five ways, on the same data"
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from scratch_dl.data import mnist_sample_path
    from scratch_dl.sgd import mnist_dls, mnist_xy, mnist_loss, batch_accuracy, validate_epoch, train_sgd_linear
    from scratch_dl.optim import train_basic_optim
    from scratch_dl.learner import mnist_learner, fit_accuracies
    path = mnist_sample_path()
    dls = mnist_dls(path, bs)
    (x, y), (xv, yv) = mnist_xy(path, 'train'), mnist_xy(path, 'valid')

    def torch_loop(train, valid):  # nn.Linear + torch.optim.SGD over any iterables of batches
        torch.manual_seed(0)
        model = nn.Linear(28*28, 1); opt = torch.optim.SGD(model.parameters(), lr=1.0)
        def fit(n):
            for _ in range(n):
                for xb, yb in train():
                    mnist_loss(model(xb), yb).backward(); opt.step(); opt.zero_grad()
                acc = validate_epoch(model, valid(), batch_accuracy)
            return acc
        return fit
    def learner_fit():
        torch.manual_seed(0)
        learn = mnist_learner(dls, nn.Linear(28*28, 1))
        return lambda n: fit_accuracies(learn, n, 1.0)[-1]
    slices = lambda a, b: lambda: ((a[i:i+bs], b[i:i+bs]) for i in range(0, len(a), bs))
    ways = {  # name -> fit(n_epochs) returning the last validation accuracy
        '(a) hand loop, `train_sgd_linear`': lambda n: train_sgd_linear(dls, epochs=n)[1][-1],
        '(b) `BasicOptim`, `train_basic_optim`': lambda n: train_basic_optim(dls, epochs=n)[1][-1],
        '(c) `torch.optim.SGD` + torch `DataLoader`': torch_loop(lambda: DataLoader(dls.train.dataset, batch_size=bs),
                                                                lambda: DataLoader(dls.valid.dataset, batch_size=bs)),
        '(d) fastai `Learner.fit`': learner_fit(),
        '(e) `torch.optim.SGD`, slices of stacked tensors': torch_loop(slices(x, y), slices(xv, yv)),
    }
    rates = {}
    for name, fit in ways.items():
        log('epochs/s', name)
        fit(1)  # warm-up
        start = time.perf_counter(); acc = fit(epochs)
        rates[name] = (epochs/(time.perf_counter()-start), acc)
    ref = rates[list(ways)[-1]][0]
    rows = [(k, f'{r:.1f}', f'{r/ref:.2f}', f'{acc:.4f}') for k, (r, acc) in rates.items()]
    return (f'## 3. MNIST linear model: epochs/s ({epochs} epochs of {len(x)} train + {len(xv)} valid images, '
            f'batch {bs}, after 1 warm-up epoch)\n\n'
            '(a), (b) restart from a fresh model for the timed epochs; (c), (d), (e) continue training.\n\n'
            + table(['loop', 'epochs/s', 'vs (e)', 'last valid acc'], rows))

def part4_imports(repeat=3):
    "Fresh-interpreter import times, best of `repeat`"
    rows = []
    for mod in (None, 'torch', 'scratch_dl', 'scratch_dl.data', 'scratch_dl.cli', 'fastai.vision.all'):
        log('import', mod)
        best = min(run([PY, '-c', f'import {mod}' if mod else 'pass'])[0] for _ in range(repeat))
        rows.append((f'`import {mod}`' if mod else 'bare interpreter (`pass`)', f'{best:.2f}'))
    pulled = run([PY, '-c', "import sys, scratch_dl.cli; print('fastai.vision.all' in sys.modules, "
                  "sum(m.startswith('fastai') for m in sys.modules))"])[1].split()
    return (f'## 4. Import time (fresh `python -c`, best of {repeat}, s)\n\n' + table(['import', 'seconds'], rows)
            + f"\n`import scratch_dl.cli` pulls in `fastai.vision.all`: **{pulled[0]}** ({pulled[1]} fastai modules loaded)\n")

def main():
    start = time.perf_counter()
    nb_part, nb_times, series = part1_notebooks()
    parts = [machine(), nb_part, part2_bare(nb_times, series), part3_loops(), part4_imports()]
    report = '\n'.join(parts) + f'\nTotal benchmark time: {time.perf_counter()-start:.0f} s\n'
    (ROOT/'benchmarks'/'results.md').write_text(report)
    print(report)

if __name__ == '__main__': main()
