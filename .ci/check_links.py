"""Check links between notebooks: every relative link in the notebooks' markdown and in README.md names an existing
notebook (`.ipynb`, never a docs-site `.html` page), and every `#anchor`, to another notebook or to a heading of the
same one, names a heading whose id is that anchor both on the docs site (Quarto, whose ids are pandoc's) and on GitHub.
(JupyterLab names its anchors another way, keeping case and punctuation: 00_data.ipynb tells the reader.)"""
import json, re, sys
from pathlib import Path

_link = re.compile(r'\]\(([^)\s]+)\)')

def github_id(heading):
    "The anchor GitHub gives a heading: lower case, punctuation but `-` and `_` dropped, spaces as hyphens"
    return re.sub(r'[^\w\- ]', '', heading.strip().lower().replace('`', '')).replace(' ', '-')

def docs_id(heading):
    "The id pandoc gives a heading (so Quarto, so the docs site): as GitHub's, but keeping `.`, and nothing before the first letter"
    s = re.sub(r'[^\w\-. ]', '', heading.strip().lower().replace('`', '')).replace(' ', '-')
    return re.sub(r'^[\W\d_]+', '', s) or 'section'

def anchors(md):
    "The anchors that reach a heading of markdown text `md` on both the docs site and GitHub"
    ids = [(github_id(m[1]), docs_id(m[1])) for m in re.finditer(r'^#{1,6}\s+(.*)$', md, flags=re.M)]
    return {g for g,d in ids if g == d}

def markdown(nb): return '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type']=='markdown')

def bad_links(text, base, own=None):
    "Problems with the relative links in `text`, whose targets are relative to folder `base`; `own`: its own anchors"
    out = []
    for target in _link.findall(text):
        if re.match(r'[a-z]+:', target): continue
        fname, _, anchor = target.partition('#')
        if not fname:
            if own is not None and anchor not in own: out.append(f"{target}: no heading of this notebook has the id #{anchor} on both the docs site and GitHub")
            continue
        if fname.endswith('.html'): out.append(f"{target}: links a docs page; link the .ipynb file"); continue
        p = base/fname
        if not p.exists(): out.append(f"{target}: no such file"); continue
        if anchor and p.suffix == '.ipynb' and anchor not in anchors(markdown(p)):
            out.append(f"{target}: no heading of {fname} has the id #{anchor} on both the docs site and GitHub")
    return out

if __name__ == '__main__':
    root = Path(sys.argv[1] if len(sys.argv) > 1 else '.')
    readme = (root/'README.md').read_text()
    problems = [f"README.md: {b}" for b in bad_links(readme, root, anchors(readme))]
    for nb in sorted((root/'nbs').glob('*.ipynb')):
        md = markdown(nb)
        problems += [f"{nb.name}: {b}" for b in bad_links(md, nb.parent, anchors(md))]
    print('\n'.join(problems) or 'links between notebooks: all resolve')
    sys.exit(1 if problems else 0)
