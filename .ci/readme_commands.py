"Print the shell commands of README.md's code blocks that follow a `<!-- ci -->` marker, one per line."
import re, sys
from pathlib import Path

def readme_commands(text):
    "Lines of every ```sh block preceded by a `<!-- ci -->` marker, without comments or blanks"
    blocks = re.findall(r'<!-- ci -->\s*```(?:sh|bash)\n(.*?)```', text, flags=re.S)
    return [l.strip() for b in blocks for l in b.splitlines() if l.strip() and not l.strip().startswith('#')]

if __name__ == '__main__': print('\n'.join(readme_commands(Path(sys.argv[1]).read_text())))
