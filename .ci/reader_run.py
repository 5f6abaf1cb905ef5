"""Run notebooks top to bottom in a fresh plain Jupyter kernel each, as a learner's "Run All" does (no nbdev test runner).

Usage: python .ci/reader_run.py [--workers N] nbs/*.ipynb   (from a virtual environment holding the package, its
`notebooks` extra and ipykernel). Cells run as written, `#| eval: false` ones included. Notebooks run N at a time
(default 2, one per core of the CI machine; each kernel is independent, as each reader's is). Prints one line per
notebook, in the order given; exits 1 if any notebook raised."""
import sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

def run_notebook(fname):
    "Execute `fname` in a fresh `python3` kernel started in its folder; return the error text, or None"
    nb = nbformat.read(fname, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(Path(fname).parent)}})
    try: client.execute()
    except CellExecutionError as e: return str(e)
    return None

def timed_run(fname):
    "`(fname, error text or None, seconds)` of `run_notebook(fname)`"
    start = time.perf_counter()
    return fname, run_notebook(fname), time.perf_counter() - start

if __name__ == '__main__':
    args = sys.argv[1:]
    workers = 2
    if args[:1] == ['--workers']: workers,args = int(args[1]),args[2:]
    nbs = [f for f in args if not Path(f).name.startswith('_')]
    failed = []
    with ProcessPoolExecutor(workers) as pool:
        for f,err,secs in pool.map(timed_run, nbs):
            print(f"{f}: {'FAILED' if err else 'ok'} in {secs:.1f} s", flush=True)
            if err: failed.append(f); print(err[-4000:], flush=True)
    print(f"reader run: {len(nbs)-len(failed)} notebooks ran, {len(failed)} raised")
    sys.exit(1 if failed else 0)
