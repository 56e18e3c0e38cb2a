#!/usr/bin/env python3
"""Every command line in the docs is run, so that the docs stay true (issue 22).

Takes every command line of the ```sh, ```bash, ```shell and ```console blocks of README.md and
docs/*.md as they are now (continuation lines joined, here-documents kept whole, comment lines
dropped; in ```console blocks only the lines after a `$ ` prompt) and runs each one that
tests/docs/not_run.txt does not list, with bash, as a user in a checkout would:

  - each docs file in a work directory of its own, laid out like the checkout: build/ is the build
    directory (so build/cli/tracemark, build/bench/... and build/studies/... are the built
    binaries), `tracemark` on PATH is the built binary, scripts/, bench/, studies/, integrations/
    and python/ are the source's, and canary/data/ is a copy (commands that regenerate its files
    write there);
  - data/ and $TRACEMARK_DATA_DIR are the set-up data directory given, seen through a temporary
    directory of links to it, which also holds the reference model when the data directory has
    none (trained here with `tracemark model train`, as scripts/demo.sh does);
  - master.key and tracemark.key, the names the docs use for the provider's key, are fresh keys
    from `tracemark keygen`; keys the docs make themselves (my.key, signing.key) they make;
  - suspect-dataset/ (and copy-of-dataset/, the same files) holds a small sample dataset made
    here with `tracemark generate` under master.key: JSONL chat records, a text file, a .gz and
    a .zst;
  - the placeholder endpoint https://api.example.com/v1 is a local `tracemark model serve
    --provider` (the reference model, named as the command's --model, its API key taken from
    $THEIR_KEY), and `tracemark probe` gets `--limit 40` (40 of the suite's 1,052 prompts): see
    SUBSTITUTIONS.

Each command must exit 0, or with a status its docs comment names ("exit 77 without one"), within
--command-timeout seconds. A command the docs add that cannot run in a test goes in not_run.txt with
a reason; the test fails on one that fails here and is not listed there, and on an entry there
that no docs command matches any more. Key bytes are never printed (the commands print key ids).
"""
import argparse
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SHELL_FENCES = ('sh', 'bash', 'shell', 'console')
PLACEHOLDER_ENDPOINT = 'https://api.example.com/v1'
# (pattern, replacement, why): applied to the command text before it runs, printed when they are.
SUBSTITUTIONS = [
    (re.escape(PLACEHOLDER_ENDPOINT), '{endpoint}',
     'the placeholder endpoint is a local tracemark model serve --provider'),
    (r'^((?:\S*/)?tracemark probe\b(?:(?!--limit).)*)$', r'\1 --limit 40',
     '40 of the suite\'s prompts, not all 1,052, to keep the test short'),
]


def split_comment(line):
    """(code, comment) of one shell line: a # at the start of a word, outside quotes."""
    single = double = escaped = False
    for i, c in enumerate(line):
        if escaped:
            escaped = False
        elif c == '\\' and not single:
            escaped = True
        elif c == "'" and not double:
            single = not single
        elif c == '"' and not single:
            double = not double
        elif c == '#' and not single and not double and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ''


def normalize(code):
    return ' '.join(code.split())


class Command:
    def __init__(self, path, line, code, comment, heredoc=''):
        self.path, self.line, self.code, self.comment = path, line, code, comment
        self.heredoc = heredoc  # the here-document's lines and terminator, if any
        self.key = normalize(code)

    def script(self):
        return self.code + ('\n' + self.heredoc if self.heredoc else '')

    def where(self):
        return f'{self.path}:{self.line}'


def commands_of(path, display):
    """The command lines of the shell blocks of one Markdown file, in order."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    out, i, fence = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = re.match(r'^\s*(```|~~~)\s*([^\s`]*)', line)
        if fence is None:
            if m:
                fence = (m.group(1), m.group(2).lower())
            i += 1
            continue
        if m and m.group(1) == fence[0] and not m.group(2):
            fence = None
            i += 1
            continue
        if fence[1] not in SHELL_FENCES:
            i += 1
            continue
        start = i + 1
        text = line
        if fence[1] == 'console':
            if not text.startswith('$ '):
                i += 1  # output, not a command
                continue
            text = text[2:]
        code, comment = split_comment(text)
        i += 1
        if not code.strip():
            continue  # a blank or comment line
        # Continuation lines.
        while code.endswith('\\') and i < len(lines):
            nxt = lines[i]
            if fence[1] == 'console' and nxt.startswith('> '):
                nxt = nxt[2:]
            more, more_comment = split_comment(nxt)
            code = code[:-1].rstrip() + ' ' + more.strip()
            comment = ' '.join(x for x in (comment, more_comment) if x)
            i += 1
        # A here-document: its lines, up to the terminator, belong to the command.
        heredoc = ''
        h = re.search(r'<<(-?)\s*([\'"]?)(\w+)\2', code)
        if h:
            body = []
            while i < len(lines):
                body.append(lines[i])
                i += 1
                if (lines[i - 1].strip() if h.group(1) else lines[i - 1]) == h.group(3):
                    break
            else:
                sys.exit(f'{display}:{start}: here-document {h.group(3)} is never closed')
            heredoc = '\n'.join(body)
        out.append(Command(display, start, code, comment, heredoc))
    if fence is not None:
        sys.exit(f'{display}: a code block is never closed')
    return out


def read_not_run(path):
    """{normalized command: (kind, paths, reason, line number)} from not_run.txt."""
    entries = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            if ' ## ' not in line:
                sys.exit(f'{path}:{n}: an entry is "COMMAND ## REASON"')
            command, reason = line.rstrip('\n').split(' ## ', 1)
            reason = reason.strip()
            if not reason:
                sys.exit(f'{path}:{n}: no reason given')
            kind, paths = 'skip', []
            m = re.match(r'^when ([^:]+):\s*(.*)$', reason)
            if m:
                kind, paths, reason = 'when', m.group(1).split(','), m.group(2)
            elif reason.startswith('pending:'):
                kind, reason = 'pending', reason[len('pending:'):].strip()
            key = normalize(command)
            if key in entries:
                sys.exit(f'{path}:{n}: listed twice: {key}')
            entries[key] = (kind, paths, reason, n)
    return entries


def run_quiet(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        print(r.stdout[-3000:])
        sys.exit(f'FAIL (set-up): exit {r.returncode}: {" ".join(cmd)}')
    return r.stdout


class Fixture:
    """What every docs file's work directory starts from (see the module's docstring)."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.tm = os.path.abspath(args.tracemark)
        self.bin = os.path.join(tmp, 'bin')
        os.makedirs(self.bin)
        os.symlink(self.tm, os.path.join(self.bin, 'tracemark'))
        self.data = os.path.join(tmp, 'data')
        os.makedirs(self.data)
        for name in sorted(os.listdir(args.data_dir)):
            os.symlink(os.path.join(os.path.abspath(args.data_dir), name),
                       os.path.join(self.data, name))
        self.env = dict(os.environ)
        self.env.update(PATH=self.bin + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin'),
                        TRACEMARK_DATA_DIR=self.data, THEIR_KEY='sk-docs-test-account-7')
        self.env.pop('TRACEMARK_TOKEN', None)
        self.seed = os.path.join(tmp, 'seed')
        os.makedirs(self.seed)
        self.server = None
        self.endpoint = None

    def tracemark(self, *argv, cwd=None):
        return run_quiet([self.tm, *argv], cwd=cwd or self.seed, env=self.env)

    def make(self):
        t0 = time.time()
        model = os.path.join(self.data, 'refmodel-cl100k-o4.bin')
        if not os.path.exists(model):
            self.tracemark('model', 'train', '--out', model)
            print(f'set-up: trained the reference model into the test\'s data directory '
                  f'({time.time() - t0:.1f} s)')
        for key in ('master.key', 'tracemark.key'):
            self.tracemark('keygen', '--out', key)
        ds = os.path.join(self.seed, 'suspect-dataset')
        os.makedirs(ds)

        def answer(account, prompt, seed):
            j = json.loads(self.tracemark('generate', '--key', 'master.key', '--account',
                                          str(account), '--prompt', prompt, '--max-tokens',
                                          '150', '--seed', str(seed), '--json'))
            return j['text']

        prompts = ['Fellow citizens', 'The state of our Union', 'Our economy', 'The Congress']
        with open(os.path.join(ds, 'chat.jsonl'), 'w', encoding='utf-8') as f:
            for n, p in enumerate(prompts[:3]):
                f.write(json.dumps({'id': f'chat-{n}', 'messages': [
                    {'role': 'user', 'content': p},
                    {'role': 'assistant', 'content': answer(7, p, n + 1)}]}) + '\n')
        with open(os.path.join(ds, 'speech.txt'), 'w', encoding='utf-8') as f:
            f.write(answer(8, prompts[3], 11))
        with gzip.open(os.path.join(ds, 'speech2.txt.gz'), 'wt', encoding='utf-8') as f:
            f.write(answer(8, prompts[0], 12))
        if shutil.which('zstd'):
            plain = os.path.join(self.tmp, 'more.jsonl')
            with open(plain, 'w', encoding='utf-8') as f:
                f.write(json.dumps({'prompt': prompts[1],
                                    'completion': answer(9, prompts[1], 13)}) + '\n')
            run_quiet(['zstd', '-q', plain, '-o', os.path.join(ds, 'more.jsonl.zst')])
        shutil.copytree(ds, os.path.join(self.seed, 'copy-of-dataset'))
        print(f'set-up: keys, suspect-dataset/ ({", ".join(sorted(os.listdir(ds)))}) '
              f'in {time.time() - t0:.1f} s')

    def workdir(self, name):
        """A fresh work directory for one docs file."""
        work = os.path.join(self.tmp, 'work', name)
        shutil.copytree(self.seed, work, symlinks=True)  # keys keep their mode 0600
        os.symlink(os.path.abspath(self.args.build_dir), os.path.join(work, 'build'))
        os.symlink(self.data, os.path.join(work, 'data'))
        for d in ('scripts', 'bench', 'studies', 'integrations', 'python'):
            os.symlink(os.path.join(self.args.source_dir, d), os.path.join(work, d))
        shutil.copytree(os.path.join(self.args.source_dir, 'canary', 'data'),
                        os.path.join(work, 'canary', 'data'))
        return work

    def start_server(self, model_name):
        """The local stand-in for PLACEHOLDER_ENDPOINT: the reference model, watermarked."""
        if self.server is not None:
            return
        keys = os.path.join(self.tmp, 'api-keys.txt')
        with open(keys, 'w', encoding='utf-8') as f:
            f.write(f'{self.env["THEIR_KEY"]} 7\n')
        port_file = os.path.join(self.tmp, 'port')
        log = open(os.path.join(self.tmp, 'serve.log'), 'w', encoding='utf-8')
        self.server = subprocess.Popen(
            [self.tm, 'model', 'serve', '--name', model_name, '--port', '0', '--port-file',
             port_file, '--provider', '--key', os.path.join(self.seed, 'master.key'),
             '--canary', '--api-keys', keys], stdout=log, stderr=log, env=self.env)
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if self.server.poll() is not None:
                break
            time.sleep(0.1)
        if not (os.path.exists(port_file) and open(port_file).read().strip()):
            sys.exit('FAIL (set-up): tracemark model serve did not start: ' +
                     open(os.path.join(self.tmp, 'serve.log')).read()[-2000:])
        port = int(open(port_file).read().strip())
        socket.create_connection(('127.0.0.1', port), timeout=10).close()
        self.endpoint = f'http://127.0.0.1:{port}/v1'
        print(f'set-up: tracemark model serve --provider --name {model_name} at {self.endpoint}')

    def stop(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def run_command(script, cwd, env, timeout):
    """(exit status or None on time-out, output) of `bash -c script`. The command runs in a
    process group of its own, killed afterwards with anything it left running."""
    p = subprocess.Popen(['bash', '-c', script], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors='replace', start_new_session=True)
    try:
        output, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        rc = None
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if rc is None:
        output, _ = p.communicate()
    return rc, output


def allowed_exits(cmd):
    """0, and any status the docs comment names ("exit 77 without one")."""
    return {0} | {int(n) for n in re.findall(r'\bexits? (\d+)\b', cmd.comment)}


def substitute(cmd, fixture):
    text, notes = cmd.script(), []
    for pattern, replacement, why in SUBSTITUTIONS:
        flags = re.M if pattern.startswith('^') else 0
        if re.search(pattern, cmd.code, flags):
            if '{endpoint}' in replacement:
                model = re.search(r'--model\s+(\S+)', cmd.code)
                fixture.start_server(model.group(1) if model else 'tracemark-reference')
                replacement = replacement.replace('{endpoint}', fixture.endpoint)
            first, _, rest = text.partition('\n')
            first = re.sub(pattern, replacement, first, flags=flags)
            text = first + ('\n' + rest if rest else '')
            notes.append(why)
    return text, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--source-dir', required=True)
    ap.add_argument('--build-dir', required=True)
    ap.add_argument('--tracemark', required=True)
    ap.add_argument('--data-dir', required=True)
    ap.add_argument('--command-timeout', type=float, default=150,
                    help='seconds one command may take (the sanitizer builds give ten times more)')
    ap.add_argument('--keep', action='store_true', help='keep the work directories')
    args = ap.parse_args()
    args.source_dir = os.path.abspath(args.source_dir)
    t0 = time.time()

    files = ['README.md'] + sorted(os.path.relpath(p, args.source_dir) for p in
                                   glob.glob(os.path.join(args.source_dir, 'docs', '*.md')))
    commands = []
    for rel in files:
        commands += commands_of(os.path.join(args.source_dir, rel), rel)
    not_run_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'not_run.txt')
    not_run = read_not_run(not_run_path)
    print(f'{len(commands)} command lines in {len(files)} files; {len(not_run)} entries in '
          f'{os.path.relpath(not_run_path, args.source_dir)}')

    failures, counts, used = [], {'ran': 0, 'listed': 0, 'skipped': 0, 'xfail': 0}, set()
    tmp = tempfile.mkdtemp(prefix='docs-commands-')
    fixture = Fixture(args, tmp)
    try:
        fixture.make()
        for rel in files:
            mine = [c for c in commands if c.path == rel]
            if not mine:
                continue
            work = None
            for cmd in mine:
                entry = not_run.get(cmd.key)
                if entry:
                    used.add(cmd.key)
                kind, paths, reason, _ = entry or ('run', [], '', 0)
                if kind == 'skip':
                    counts['listed'] += 1
                    print(f'NOT RUN  {cmd.where()}: {cmd.key}\n         ({reason})')
                    continue
                if work is None:
                    work = fixture.workdir(os.path.splitext(os.path.basename(rel))[0])
                if kind == 'when':
                    missing = [p for p in paths if not os.path.exists(os.path.join(work, p))]
                    if missing:
                        counts['skipped'] += 1
                        print(f'SKIPPED  {cmd.where()}: {cmd.key}\n         (no '
                              f'{", ".join(missing)}: {reason})')
                        continue
                script, notes = substitute(cmd, fixture)
                started = time.time()
                rc, output = run_command(script, work, fixture.env, args.command_timeout)
                took = time.time() - started
                ok = rc in allowed_exits(cmd)
                status = (f'exit {rc}' if rc is not None else
                          f'timed out after {args.command_timeout:.0f} s')
                shown = script.split('\n')[0]
                extra = ''.join(f'\n         (test: {n})' for n in notes)
                if kind == 'pending':
                    if ok:
                        failures.append(f'{cmd.where()}: listed as pending in not_run.txt but '
                                        f'passes now: remove its entry ({reason})')
                        print(f'XPASS    {cmd.where()}: {shown}  [{status}, {took:.1f} s]')
                    else:
                        counts['xfail'] += 1
                        print(f'XFAIL    {cmd.where()}: {shown}  [{status}, {took:.1f} s]'
                              f'\n         (pending: {reason})\n' + indent(output, 6))
                    continue
                counts['ran'] += 1
                print(f'{"PASS" if ok else "FAIL"}     {cmd.where()}: {shown}  '
                      f'[{status}, {took:.1f} s]{extra}')
                if not ok:
                    print(indent(output, 30))
                    why = (' (it may be unable to run in a test: then list it in '
                           'tests/docs/not_run.txt with a reason)' if entry is None else '')
                    failures.append(f'{cmd.where()}: {status}, expected '
                                    f'{" or ".join(map(str, sorted(allowed_exits(cmd))))}: '
                                    f'{cmd.key}{why}')
    finally:
        fixture.stop()
        if args.keep:
            print(f'work directories kept in {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for key, (_, _, _, n) in sorted(not_run.items(), key=lambda kv: kv[1][3]):
        if key not in used:
            failures.append(f'tests/docs/not_run.txt:{n}: no docs command is "{key}" any more: '
                            f'remove or update the entry')
    print(f'\n{counts["ran"]} commands run, {counts["listed"]} listed as not run, '
          f'{counts["skipped"]} skipped (what they need is absent), {counts["xfail"]} pending; '
          f'{time.time() - t0:.0f} s')
    if failures:
        print('\nFAIL:\n' + '\n'.join('  ' + f for f in failures))
        sys.exit(1)
    print('PASS: every docs command line runs as documented or is listed with a reason')


def indent(text, lines):
    tail = text.rstrip('\n').split('\n')[-lines:] if text.strip() else ['(no output)']
    return '\n'.join('         | ' + l for l in tail)


if __name__ == '__main__':
    main()
