"""Run notebooks top to bottom in a fresh plain Jupyter kernel each, as a learner's "Run All" does (no nbdev test runner).

Usage: python .ci/reader_run.py nbs/*.ipynb   (from a virtual environment holding the package, its `notebooks` extra
and ipykernel). Cells run as written, `#| eval: false` ones included. Prints one line per notebook; exits 1 if any
notebook raised."""
import sys, time
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

if __name__ == '__main__':
    failed = []
    for f in sys.argv[1:]:
        if Path(f).name.startswith('_'): continue
        start = time.perf_counter()
        err = run_notebook(f)
        print(f"{f}: {'FAILED' if err else 'ok'} in {time.perf_counter()-start:.1f} s", flush=True)
        if err: failed.append(f); print(err[-4000:], flush=True)
    print(f"reader run: {len(sys.argv)-1-len(failed)} notebooks ran, {len(failed)} raised")
    sys.exit(1 if failed else 0)
