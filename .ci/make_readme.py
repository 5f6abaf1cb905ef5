"""Write README.md from nbs/index.ipynb (Quarto's nbdev-readme is not available here): the notebook as Markdown,
with links to sibling notebooks (`00_data.ipynb`) rewritten to work from the repository root (`nbs/00_data.ipynb`)."""
import re, subprocess, sys
from pathlib import Path

md = subprocess.run([sys.executable, '-m', 'nbconvert', '--to', 'markdown', '--stdout', 'nbs/index.ipynb'],
                    capture_output=True, text=True, check=True).stdout
Path('README.md').write_text(re.sub(r'\]\((\d\d_[\w-]+\.ipynb)', r'](nbs/\1', md))
