"""Kill `scratch_dl submit` and `scratch_dl results --only titanic --out DIR` at random moments, with SIGINT (Ctrl-C)
and SIGKILL, and check that no partial or empty output file is ever left: after every kill each output file is
absent (when there was none before), the valid previous file, or a complete new one.

The `mnist-cache` case does the same to the full MNIST's extraction and decoded-image caches: in a fresh FASTAI_HOME
(fastai's data folder empty) and `$SCRATCH_DL_DATA` holding mnist_png.tgz, a short child calls
`dataset_path(MNIST)` and stacks every class folder; it is killed at random moments and the moment a temporary file
shows in a `.stacks` folder (a cache being written), starting alternately from nothing and from the extracted
folder without its caches. After every kill a fresh run must finish, give every stack equal to the stacks decoded from
the PNGs (by a hash of each, from a clean run at the start), leave no temporary file or folder, and tell any rebuilt
cache in one line.

Run from the project root, in the project's environment: `python benchmarks/kill_test.py [--runs 20] [--seed 0]`.
By default 20 kills per command and signal fall at random moments of a run (a run that finishes before its moment
is drawn again), and 10 more the moment a temporary output file appears, that is while a file is being written;
for `mnist-cache` (seconds per run) 2 and 2 (`--mnist-runs`, `--mnist-at-write`). `--only mnist-cache` runs one case.
Exit status 1 if any output was found partial, empty or invalid, or a run after a kill failed or gave other stacks.
"""
import argparse, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd
from PIL import Image

CLI = [shutil.which('scratch_dl')] if shutil.which('scratch_dl') else [sys.executable, '-m', 'scratch_dl.cli']
MODELS = {'linear', 'sigmoid', 'matrix', 'net', 'deep'}
CASES = ('submit', 'results', 'mnist-cache')

def valid_submission(f:Path):
    "Whether `f` is a complete Kaggle submission: header and 418 rows of `PassengerId,0|1`"
    lines = f.read_text().splitlines()
    return (len(lines) == 419 and lines[0] == 'PassengerId,Survived'
            and all(l.split(',')[1] in ('0', '1') and l.split(',')[0].isdigit() for l in lines[1:]))

def valid_result(f:Path):
    "Whether `f` (results.csv, results.md or curves.png) is complete"
    if f.name == 'results.csv':
        df = pd.read_csv(f)
        return list(df.columns[:2]) == ['dataset', 'model'] and set(df.model) == MODELS and df.accuracy.notna().all()
    if f.name == 'results.md':
        lines = f.read_text().splitlines()
        return len(lines) == 9 and lines[0].startswith('| dataset |') and lines[-1].startswith('data loading')
    data = f.read_bytes()
    if not (data.startswith(b'\x89PNG\r\n\x1a\n') and data[-8:-4] == b'IEND'): return False
    with Image.open(f) as im: im.load()
    return True

def temps(folder:Path): return sorted(p.name for p in folder.iterdir() if p.name.startswith('.'))

class Case:
    "One command to kill: how to run it, which files it writes, and how to make a 'previous' version of them"
    def __init__(self, name, argv, files, valid, prepare):
        self.name,self.argv,self.files,self.valid,self.prepare = name,argv,files,valid,prepare

def make_cases(root:Path):
    sub,res = root/'sub',root/'res'
    sub.mkdir(); res.mkdir()
    # previous outputs come from a *different* run, so that "kept the old file" and "wrote the new one" can be told apart
    submit = Case('submit', ['submit', '-m', 'deep', '-o', str(sub/'sub.csv'), '--force', '-q'], [sub/'sub.csv'],
                  valid_submission, ['submit', '-m', 'linear', '-o', str(sub/'sub.csv'), '--force', '-q'])
    results = Case('results', ['results', '--only', 'titanic', '--out', str(res/'out'), '--force', '-q'],
                   [res/'out'/n for n in ('results.csv', 'results.md', 'curves.png')], valid_result,
                   ['results', '--only', 'titanic', '--out', str(res/'out'), '--force', '-q'])
    return [submit, results]

def run(argv, **kw): return subprocess.run(CLI + argv, capture_output=True, text=True, **kw)

def judge(case:Case, previous:bool, snapshot:dict):
    "The state of each output file: absent, previous, new, or (failures) LOST, EMPTY, PARTIAL"
    states = []
    for f in case.files:
        if not f.exists(): states.append('absent' if not previous else 'LOST')
        elif previous and f.read_bytes() == snapshot[f]: states.append('previous')
        else:
            try: ok = f.stat().st_size > 0 and case.valid(f)
            except Exception: ok = False
            states.append('new' if ok else ('EMPTY' if f.stat().st_size == 0 else 'PARTIAL'))
    return states

def trial(case:Case, sig, mode:str, delay:float, previous:bool, snapshot:dict):
    """Run `case` and send `sig`: after `delay` seconds (mode 'random'), or as soon as a temporary file shows in the
    output folder (mode 'at write'); None if the run finished first, else a dict describing what happened"""
    folder = case.files[0].parent
    for f in case.files:
        if previous: f.parent.mkdir(exist_ok=True); f.write_bytes(snapshot[f])
        elif f.exists(): f.unlink()
    if mode == 'at write' and folder.exists():
        for t in temps(folder): (folder/t).unlink()  # left by an earlier SIGKILL: they would trigger the kill at once
    p = subprocess.Popen(CLI + case.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.perf_counter()
    if mode == 'random':
        time.sleep(delay)
    else:
        while p.poll() is None and not (folder.exists() and temps(folder)): time.sleep(0.0002)
    at = time.perf_counter() - start
    if p.poll() is not None:  # finished before the kill: not a kill, the caller draws again
        p.wait(); p.stderr.close()
        return None
    p.send_signal(sig)
    code = p.wait()
    err = p.stderr.read(); p.stderr.close()
    states = judge(case, previous, snapshot)
    return dict(case=case.name, signal=sig.name, mode=mode, at=round(at, 3), previous=previous, code=code, states=states,
                temps_left=len(temps(folder)) if folder.exists() else 0,
                # Ctrl-C: one line and exit 130, or, if the work was already over when it came, exit 0 and no message
                one_line=(sig != signal.SIGINT or (code == 0 and not err.strip())
                          or (code == 130 and len(err.strip().splitlines()) == 1 and err.strip().endswith(': interrupted'))),
                bad=any(s in ('LOST', 'EMPTY', 'PARTIAL') for s in states), stderr_tail=err[-300:])

# ---- the full MNIST's extraction and decoded-image caches ----
MNIST_CHILD = r"""
import hashlib, json, sys
try:
    from scratch_dl.datasets import dataset_path, stack_digits, read_digits
    from scratch_dl.mnist_digits import MNIST
    path,out = dataset_path(MNIST),{}
    for k in MNIST.counts:
        x = stack_digits(path/k)
        if sys.argv[1:] == ['--reference']:  # decode the PNGs again, without any cache, and compare
            ref = read_digits(path/k).float().div_(255)
            if not (ref.shape == x.shape and bool((ref == x).all())): sys.exit(f"{k}: the stack differs from its PNGs")
        out[k] = hashlib.sha1(x.numpy().tobytes()).hexdigest()
    print(json.dumps(out))
except KeyboardInterrupt:
    print('interrupted', file=sys.stderr); sys.exit(130)
"""

class MnistCache:
    "A fresh FASTAI_HOME in which `dataset_path(MNIST)` extracts and caches the full MNIST, and the checks of what it leaves"
    name = 'mnist-cache'
    def __init__(self, root:Path):
        self.home = root/'fastai_home'
        self.data = self.home/'data'
        self.env = {**os.environ, 'FASTAI_HOME': str(self.home)}
        self.env.setdefault('SCRATCH_DL_DATA', '/work/shared/data')
        self.env.setdefault('OMP_NUM_THREADS', '1')

    def stacks_dirs(self):
        "Every `.stacks` folder: the extracted one, and those inside temporary extraction folders"
        if not self.data.is_dir(): return []
        found = []
        for e in os.scandir(self.data):
            if e.name == 'mnist_png': found.append(Path(e.path)/'.stacks')
            elif e.name.startswith('.mnist_png-'): found.append(Path(e.path)/'mnist_png'/'.stacks')
        return found

    def cache_temps(self):
        "Temporary files in any `.stacks` folder (a cache being written)"
        out = []
        for d in self.stacks_dirs():
            try: out += [d/n for n in os.listdir(d) if n.startswith('.')]
            except OSError: pass
        return out

    def leftovers(self):
        "Temporary extraction folders and temporary cache files left in fastai's data folder"
        top = [self.data/n for n in os.listdir(self.data) if n.startswith('.')] if self.data.is_dir() else []
        return top + [p for p in self.cache_temps() if p.parent.parent.parent == self.data]

    def prepare(self, start:str):
        "'nothing': fastai's data folder empty; 'no caches': MNIST extracted, its `.stacks` emptied"
        if start == 'nothing': shutil.rmtree(self.data, ignore_errors=True)
        else:
            for f in (self.data/'mnist_png'/'.stacks').iterdir(): f.unlink()

    def popen(self, *extra):
        return subprocess.Popen([sys.executable, '-c', MNIST_CHILD, *extra], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *extra):
        return subprocess.run([sys.executable, '-c', MNIST_CHILD, *extra], env=self.env, capture_output=True, text=True)

def mnist_trial(mc:MnistCache, sig, mode:str, delay:float, start:str, reference:dict):
    """Start the child from `start`, send `sig` after `delay` s or when a cache is being written, then run it again
    to the end and check it; None if the child finished before its kill"""
    mc.prepare(start)
    p = mc.popen()
    t0 = time.perf_counter()
    if mode == 'random':
        while p.poll() is None and time.perf_counter() - t0 < delay: time.sleep(0.01)
    else:
        while p.poll() is None and not mc.cache_temps(): time.sleep(0.0005)
    at = time.perf_counter() - t0
    if p.poll() is not None:
        p.communicate()
        return None
    p.send_signal(sig)
    _,err = p.communicate()
    code = p.returncode
    left = len(mc.leftovers())
    t1 = time.perf_counter()
    again = mc.run()  # a fresh run to the end
    t_again = time.perf_counter() - t1
    lines = again.stderr.strip().splitlines()
    try: got = json.loads(again.stdout)
    except ValueError: got = None
    problems = []
    if again.returncode != 0: problems.append(f'fresh run exit {again.returncode}')
    if got != reference: problems.append('stacks differ' if got else 'no stacks')
    if 'Traceback' in again.stderr or any(not l.startswith('scratch_dl: ') for l in lines): problems.append('stderr not one-line notices')
    if (n_left := len(mc.leftovers())): problems.append(f'{n_left} temporary files left after the fresh run')
    n_caches = len(list((mc.data/'mnist_png'/'.stacks').glob('*.pt')))
    if n_caches != 20: problems.append(f'{n_caches} caches after the fresh run')
    return dict(case=mc.name, signal=sig.name, mode=mode, at=round(at, 3), start=start, code=code, temps_after_kill=left,
                fresh_s=round(t_again, 1), rebuilt=sum('rebuilding the cache' in l for l in lines),
                one_line=(sig != signal.SIGINT or code in (0, 130) and len(err.strip().splitlines()) <= 1),
                bad=bool(problems), problems='; '.join(problems), stderr_tail=(err + again.stderr)[-300:])

def mnist_case(root:Path, rng:random.Random, n_random:int, n_at_write:int):
    "Run the `mnist-cache` case; its rows, and how many children finished before their kill"
    mc = MnistCache(root)
    times = {}
    for start in ('nothing', 'no caches'):
        if start == 'no caches': mc.prepare(start)
        t0 = time.perf_counter(); r = mc.run('--reference') if start == 'nothing' else mc.run(); times[start] = time.perf_counter() - t0
        assert r.returncode == 0, r.stderr
        if start == 'nothing': reference = json.loads(r.stdout)
        else: assert json.loads(r.stdout) == reference, 'stacks rebuilt from the PNGs differ from the reference'
    n_ref = sum(1 for _ in (mc.data/'mnist_png').rglob('*.png'))
    print(f"mnist-cache: {n_ref} PNGs, {len(reference)} stacks; an uninterrupted run takes {times['nothing']:.1f} s from nothing "
          f"(with a second decode for the reference), {times['no caches']:.1f} s from the extracted folder without caches", flush=True)
    rows,missed = [],{}
    for sig in (signal.SIGINT, signal.SIGKILL):
        for mode,n in (('random', n_random), ('at write', n_at_write)):
            done = 0
            while done < n:
                start = ('nothing', 'no caches')[done % 2]
                r = mnist_trial(mc, sig, mode, rng.uniform(0, times[start]), start, reference)
                if r is None: missed[(mc.name, sig.name, mode)] = missed.get((mc.name, sig.name, mode), 0) + 1; continue
                rows.append(r); done += 1
                print(f"  {sig.name} {mode} from {start}: killed at {r['at']:.2f} s, exit {r['code']}, {r['temps_after_kill']} temporary "
                      f"left; fresh run {r['fresh_s']} s, {r['rebuilt']} rebuilt, {r['problems'] or 'ok'}", flush=True)
                if r['bad'] or not r['one_line']: print('  PROBLEM:', r, flush=True)
    return rows, missed

def mnist_summary(rows, missed):
    "Print the table and the line of the `mnist-cache` case; the number of bad kills"
    df = pd.DataFrame(rows)
    summary = (df.groupby(['case', 'signal', 'mode'])
                 .agg(kills=('at', 'size'), seconds_in=('at', lambda a: f'{a.min():.2f}-{a.max():.2f}'),
                      starts=('start', lambda o: ', '.join(f'{k} {v}' for k,v in o.value_counts().items())),
                      exit_codes=('code', lambda c: ' '.join(f'{k}:{v}' for k,v in sorted(c.value_counts().items()))),
                      temps_after_kill=('temps_after_kill', 'sum'), rebuilt=('rebuilt', 'sum'),
                      bad=('bad', 'sum'), not_one_line=('one_line', lambda x: int((~x).sum()))))
    summary['finished_first'] = [missed.get(k, 0) for k in summary.index]
    with pd.option_context('display.width', 250, 'display.max_colwidth', 80): print(summary.to_string())
    n_bad = int(df.bad.sum())
    print(f"\nmnist-cache: {len(df)} kills ({sum(missed.values())} more children finished before their kill and were drawn again), "
          f"{int((df.temps_after_kill > 0).sum())} left temporary files behind; after each a fresh run: {len(df) - n_bad} ok, "
          f"{n_bad} failed, gave other stacks, left temporary files or answered with more than notices; "
          f"{int(df.rebuilt.sum())} caches rebuilt (each told in one line); fresh runs {df.fresh_s.min():.1f}-{df.fresh_s.max():.1f} s")
    return n_bad

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--runs', type=int, default=20, help='kills at random moments per command and signal (default 20)')
    ap.add_argument('--at-write', type=int, default=10, help='kills while a file is written, per command and signal (default 10)')
    ap.add_argument('--seed', type=int, default=0, help='seed of the random moments')
    ap.add_argument('--mnist-runs', type=int, default=2, help='mnist-cache: kills at random moments per signal (default 2)')
    ap.add_argument('--mnist-at-write', type=int, default=2, help='mnist-cache: kills while a cache is written, per signal (default 2)')
    ap.add_argument('--only', action='append', choices=CASES, help='run only this case (may be repeated; default: all)')
    args = ap.parse_args()
    only = set(args.only or CASES)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix='kill_test-'))
    rows,missed = [],{}
    try:
        for case in make_cases(root):
            if case.name not in only: continue
            prev = run(case.prepare)
            assert prev.returncode == 0, prev.stderr
            snapshot = {f: f.read_bytes() for f in case.files}
            durations = []
            for _ in range(3):
                start = time.perf_counter(); r = run(case.argv); durations.append(time.perf_counter() - start)
                assert r.returncode == 0, r.stderr
            t = statistics.median(durations)
            print(f"{case.name}: an uninterrupted run takes {t:.2f} s (median of 3; {', '.join(f'{d:.2f}' for d in durations)})", flush=True)
            for sig in (signal.SIGINT, signal.SIGKILL):
                for mode,n in (('random', args.runs), ('at write', args.at_write)):
                    done = 0
                    while done < n:
                        r = trial(case, sig, mode, rng.uniform(0, t), previous=(done % 2 == 1), snapshot=snapshot)
                        if r is None: missed[(case.name, sig.name, mode)] = missed.get((case.name, sig.name, mode), 0) + 1; continue
                        rows.append(r); done += 1
                        if r['bad'] or not r['one_line']: print('  PROBLEM:', r, flush=True)
                left = temps(case.files[0].parent)
                if sig == signal.SIGKILL:
                    again = run(case.argv)  # the next run removes the temporary files killed runs left
                    print(f"  temporary files left by {args.runs + args.at_write} kills with SIGKILL: {len(left)}; after one more run: "
                          f"{len(temps(case.files[0].parent))} (exit {again.returncode})", flush=True)
        if 'mnist-cache' in only: mnist_rows,mnist_missed = mnist_case(root, rng, args.mnist_runs, args.mnist_at_write)
    finally: shutil.rmtree(root, ignore_errors=True)
    n_mnist_bad = mnist_summary(mnist_rows, mnist_missed) if 'mnist-cache' in only else 0
    if not rows: return 1 if n_mnist_bad else 0
    df = pd.DataFrame(rows)
    df['outcome'] = df.states.map(lambda s: '+'.join(sorted(set(s))))
    summary = (df.groupby(['case', 'signal', 'mode'])
                 .agg(kills=('at', 'size'), seconds_in=('at', lambda a: f'{a.min():.2f}-{a.max():.2f}'),
                      exit_codes=('code', lambda c: ' '.join(f'{k}:{v}' for k,v in sorted(c.value_counts().items()))),
                      outcomes=('outcome', lambda o: ', '.join(f'{k} {v}' for k,v in o.value_counts().items())),
                      bad=('bad', 'sum'), not_one_line=('one_line', lambda x: int((~x).sum()))))
    summary['finished_first'] = [missed.get(k, 0) for k in summary.index]
    with pd.option_context('display.width', 250, 'display.max_colwidth', 80): print(summary.to_string())
    n_bad = int(df.bad.sum())
    print(f"\n{len(df)} kills ({sum(missed.values())} more runs finished before their kill and were drawn again): "
          f"{n_bad} left a partial, empty or lost output file; {int((~df.one_line).sum())} Ctrl-C runs answered "
          "with more than one line or a traceback")
    return 1 if n_bad or n_mnist_bad else 0

if __name__ == '__main__': sys.exit(main())
