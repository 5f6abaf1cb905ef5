"""Write README.md from nbs/index.ipynb (Quarto's nbdev-readme is not available here): the notebook as Markdown,
with links to sibling notebooks (`00_data.ipynb`) rewritten to work from the repository root (`nbs/00_data.ipynb`).
As in the docs, `#| hide` cells are left out and `#| echo: false` cells show only their stored output (the table of
the series, which `python -m scratch_dl.search` keeps in step with the notebooks)."""
import json, re, subprocess, sys, tempfile
from pathlib import Path

def directives(cell): return {l.replace(' ', '') for l in ''.join(cell['source']).splitlines() if l.startswith('#|')}

nb = json.loads(Path('nbs/index.ipynb').read_text(encoding='utf-8'))
nb['cells'] = [c for c in nb['cells'] if '#|hide' not in directives(c)]
for c in nb['cells']:
    if '#|echo:false' in directives(c): c.setdefault('metadata', {})['transient'] = {'remove_source': True}
with tempfile.TemporaryDirectory() as d:
    Path(d, 'index.ipynb').write_text(json.dumps(nb), encoding='utf-8')
    md = subprocess.run([sys.executable, '-m', 'nbconvert', '--to', 'markdown', '--stdout', f'{d}/index.ipynb'],
                        capture_output=True, text=True, check=True).stdout
Path('README.md').write_text(re.sub(r'\]\((\d\d_[\w-]+\.ipynb)', r'](nbs/\1', md))
