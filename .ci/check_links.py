"""Check links between notebooks: every relative link in the notebooks' markdown and in README.md names an existing
notebook (`.ipynb`, never a docs-site `.html` page), and every `#anchor` names a heading of that notebook."""
import json, re, sys
from pathlib import Path

_link = re.compile(r'\]\(([^)\s]+)\)')
def slug(heading): return re.sub(r'[^\w\- ]', '', heading.strip().lower().replace('`', '')).replace(' ', '-')

def headings(nb):
    cells = json.loads(nb.read_text())['cells']
    return {slug(m[1]) for c in cells if c['cell_type']=='markdown'
            for m in re.finditer(r'^#{1,6}\s+(.*)$', ''.join(c['source']), flags=re.M)}

def bad_links(text, base):
    "Problems with the relative links in `text`, whose targets are relative to folder `base`"
    out = []
    for target in _link.findall(text):
        if re.match(r'[a-z]+:', target) or target.startswith('#'): continue
        fname, _, anchor = target.partition('#')
        if fname.endswith('.html'): out.append(f"{target}: links a docs page; link the .ipynb file"); continue
        p = base/fname
        if not p.exists(): out.append(f"{target}: no such file"); continue
        if anchor and p.suffix == '.ipynb' and anchor not in headings(p): out.append(f"{target}: no heading #{anchor}")
    return out

if __name__ == '__main__':
    root = Path(sys.argv[1] if len(sys.argv) > 1 else '.')
    problems = [f"README.md: {b}" for b in bad_links((root/'README.md').read_text(), root)]
    for nb in sorted((root/'nbs').glob('*.ipynb')):
        md = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type']=='markdown')
        problems += [f"{nb.name}: {b}" for b in bad_links(md, nb.parent)]
    print('\n'.join(problems) or 'links between notebooks: all resolve')
    sys.exit(1 if problems else 0)
