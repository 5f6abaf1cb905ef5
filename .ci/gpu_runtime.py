"""A GPU runtime gives the same lessons. With `torch.cuda.is_available()` reporting True, one device, device 0 current
(a patch made at interpreter start, before any lesson imports torch), this machine looks like a Colab GPU runtime to
every library, fastai's `default_device()` included, yet has no GPU: anything sent to 'cuda' fails at once ("Found no
NVIDIA driver"). Under that patch
  * every lesson's runs, as `scratch_dl results` trains them (`run_series`, with `--epochs` each), give exactly the
    figures they give without it, and
  * lessons 04, 07 and 08, the ones that use fastai's `Learner`, run top to bottom with every asserted figure holding.
    Lesson 10 builds its `Learner` the same way (`DataLoaders(..., device=train_device())`) but is left out here: its
    Run All would add about 75 s to CI, and its two trainers, `fit` and fastai's, are already trained under the patch
    by the runs above (`run_series` trains its `RUNS`).
So the series trains on the CPU unless the learner opts in ($SCRATCH_DL_DEVICE), whatever hardware it finds.

Usage: python .ci/gpu_runtime.py [--epochs N]   (from the repository root, in the dev environment, with the data)"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path

SITECUSTOMIZE = """import os
if os.environ.get('SCRATCH_DL_FAKE_CUDA'):
    import torch
    # what a one-GPU runtime reports (fastai asks all three); there is no GPU behind them, so anything sent there fails
    torch.cuda.is_available,torch.cuda.device_count,torch.cuda.current_device = lambda: True,lambda: 1,lambda: 0
"""

RUNS = """import json, sys, torch
from scratch_dl.series import run_series
try: torch.zeros(1).to('cuda'); bites = False
except (RuntimeError, AssertionError): bites = True
r = run_series(epochs=int(sys.argv[1]))
json.dump(dict(cuda=torch.cuda.is_available(), bites=bites, skipped=r.skipped, unavailable=sorted(r.unavailable),
               figures={f'{d}: {m}': [f.metrics, f.losses] for (d,m),f in r.fits.items()}), sys.stdout)
"""

NOTEBOOKS = ['nbs/04_mnist_learner.ipynb', 'nbs/07_mnist_learner_scratch.ipynb', 'nbs/08_mnist_digits.ipynb']

def environ(site, fake):
    "This environment with `site` (holding the sitecustomize) on the path, the patch on or off, and no device opt-in"
    env = {k: v for k,v in os.environ.items() if k not in ('SCRATCH_DL_DEVICE', 'SCRATCH_DL_FAKE_CUDA')}
    env['PYTHONPATH'] = os.pathsep.join(p for p in (site, os.environ.get('PYTHONPATH')) if p)
    if fake: env['SCRATCH_DL_FAKE_CUDA'] = '1'
    return env

def main(epochs=2):
    start = time.perf_counter()
    site = tempfile.mkdtemp()
    Path(site, 'sitecustomize.py').write_text(SITECUSTOMIZE)
    procs = {fake: subprocess.Popen([sys.executable, '-c', RUNS, str(epochs)], env=environ(site, fake),
                                    stdout=subprocess.PIPE, text=True) for fake in (False, True)}
    out = {}
    for fake,p in procs.items():
        stdout,_ = p.communicate()
        if p.returncode: sys.exit(f"the runs {'with' if fake else 'without'} the GPU patch failed (exit {p.returncode})")
        out[fake] = json.loads(stdout)
    plain,gpu = out[False],out[True]
    assert gpu['cuda'] and gpu['bites'] and not plain['cuda'], "the patch did not make torch report a GPU it cannot use"
    for o in (plain, gpu): assert not o['skipped'] and not o['unavailable'], (o['skipped'], o['unavailable'])
    assert gpu['figures'] == plain['figures'], {k: (plain['figures'].get(k), v) for k,v in gpu['figures'].items() if plain['figures'].get(k) != v}
    print(f"  every lesson's runs ({len(gpu['figures'])}, {epochs} epochs each): the same figures with torch reporting a GPU "
          f"({time.perf_counter()-start:.0f} s)", flush=True)
    t = time.perf_counter()
    r = subprocess.run(['nbdev-test', '--n-workers', '2', '--file-re', r'^0[478]_', 'nbs'], env=environ(site, True))
    if r.returncode: sys.exit("a lesson stopped with torch reporting a GPU (see above)")
    print(f"  Run All of {', '.join(Path(n).stem for n in NOTEBOOKS)}: every asserted figure holds ({time.perf_counter()-t:.0f} s)")
    print(f"  GPU runtime check OK ({time.perf_counter()-start:.0f} s)")

if __name__ == '__main__':
    args = sys.argv[1:]
    main(int(args[1]) if args[:1] == ['--epochs'] else 2)
