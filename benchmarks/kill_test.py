"""Kill `scratch_dl submit` and `scratch_dl results --only titanic --out DIR` at random moments, with SIGINT (Ctrl-C)
and SIGKILL, and check that no partial or empty output file is ever left: after every kill each output file is
absent (when there was none before), the valid previous file, or a complete new one.

Run from the project root, in the project's environment: `python benchmarks/kill_test.py [--runs 20] [--seed 0]`.
By default 20 kills per command and signal fall at random moments of a run (a run that finishes before its moment
is drawn again), and 10 more the moment a temporary output file appears, that is while a file is being written.
Exit status 1 if any output was found partial, empty or invalid.
"""
import argparse, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd
from PIL import Image

CLI = [shutil.which('scratch_dl')] if shutil.which('scratch_dl') else [sys.executable, '-m', 'scratch_dl.cli']
MODELS = {'linear', 'sigmoid', 'matrix', 'net', 'deep'}

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

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--runs', type=int, default=20, help='kills at random moments per command and signal (default 20)')
    ap.add_argument('--at-write', type=int, default=10, help='kills while a file is written, per command and signal (default 10)')
    ap.add_argument('--seed', type=int, default=0, help='seed of the random moments')
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix='kill_test-'))
    rows,missed = [],{}
    try:
        for case in make_cases(root):
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
    finally: shutil.rmtree(root, ignore_errors=True)
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
    return 1 if n_bad else 0

if __name__ == '__main__': sys.exit(main())
