"""Replay the file writes of a traced process, to test what a SIGKILL can leave on disk.

A process killed with SIGKILL leaves its files as its completed write calls made them (the page cache survives
the process). Linux checks for a fatal signal between the pages of a write, never inside one, so a kill
leaves either some prefix of the process's write calls, or such a prefix plus the first pages of the next
write. :func:`crash_states` yields every one of these states, for writes recorded by
``strace -f -y -xx -s N -e trace=pwrite64,ftruncate,rename,renameat,renameat2,write,sendfile,copy_file_range``
(``shutil.copyfile`` copies with sendfile).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

PAGE = 4096

_PWRITE = re.compile(r'pwrite64\(\d+<([^>]*)>, "((?:\\x[0-9a-f]{2})*)", (\d+), (\d+)\) = (-?\d+)')
_FTRUNCATE = re.compile(r'ftruncate\(\d+<([^>]*)>, (\d+)\) = 0')
_RENAME = re.compile(r'rename(?:at2?)?\((?:[^,"]*, )?"([^"]*)", (?:[^,"]*, )?"([^"]*)"(?:, \w+)?\) = 0')
_SENDFILE = re.compile(r'sendfile\(\d+<([^>]*)>, \d+<([^>]*)>, .*\) = (-?\d+)')  # (out, in, offset, count)
_COPY_FILE_RANGE = re.compile(r'copy_file_range\(\d+<([^>]*)>, NULL, \d+<([^>]*)>, NULL, .*\) = (-?\d+)')
_WRITE = re.compile(r'write\((\d+)<([^>]*)>, "((?:\\x[0-9a-f]{2})*)", (\d+)\) = (-?\d+)')


def strace_works() -> bool:
    """Whether strace is installed and may trace a child here (containers can forbid ptrace)."""
    exe = shutil.which("strace")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-o", os.devnull, "true"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def strace_command(trace_path) -> list:
    return ["strace", "-f", "-y", "-xx", "-s", "100000000", "-o", str(trace_path),
            "-e", "trace=pwrite64,ftruncate,rename,renameat,renameat2,write,sendfile,copy_file_range"]


def _text(escaped: str) -> str:
    """A string argument as strace -xx prints it (every byte as \\xNN)."""
    return bytes.fromhex(escaped.replace("\\x", "")).decode() if escaped.startswith("\\x") else escaped


def _joined_lines(trace_path):
    """Trace lines, with calls that strace split across threads ("<unfinished ...>" / "resumed>") joined."""
    pending = {}
    with open(trace_path) as fh:
        for line in fh:
            pid, _, rest = line.rstrip("\n").partition(" ")
            rest = rest.strip()
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")]
            elif rest.startswith("<..."):
                yield pid, pending.pop(pid, "") + rest.split("resumed>", 1)[1]
            else:
                yield pid, rest


def operations(trace_path, directory):
    """The recorded operations on files in ``directory``, in order: ("write", name, offset, bytes),
    ("truncate", name, size), ("rename", old, new), ("copy", source, target, offset, count) for a sequential
    sendfile, and ("stdout", bytes) for what the traced process (not its children) printed."""
    directory = os.path.realpath(directory)
    ops = []
    main = None
    cursor = {}  # (source, target) -> bytes copied so far by a run of sendfile calls

    def ours(path):
        return os.path.dirname(os.path.realpath(path)) == directory

    for pid, line in _joined_lines(trace_path):
        main = main or pid
        if line.startswith("pwrite64("):
            m = _PWRITE.match(line)
            if m is None:
                raise ValueError(f"cannot parse: {line[:200]}")
            path, data, count, offset, ret = m.groups()
            path = _text(path)
            data = bytes.fromhex(data.replace("\\x", ""))
            if ours(path):
                if int(ret) != int(count) or len(data) != int(count):
                    raise ValueError(f"short or truncated write in the trace: {line[:200]}")
                ops.append(("write", os.path.basename(path), int(offset), data))
        elif line.startswith("ftruncate("):
            m = _FTRUNCATE.match(line)
            if m and ours(_text(m.group(1))):
                ops.append(("truncate", os.path.basename(_text(m.group(1))), int(m.group(2))))
        elif line.startswith("rename"):
            m = _RENAME.match(line)
            if m:
                old, new = _text(m.group(1)), _text(m.group(2))
                if ours(old):
                    ops.append(("rename", os.path.basename(old), os.path.basename(new)))
        elif line.startswith(("sendfile(", "copy_file_range(")):
            m = (_SENDFILE if line.startswith("sendfile(") else _COPY_FILE_RANGE).match(line)
            if m is None:
                raise ValueError(f"cannot parse: {line[:200]}")
            first, second, ret = _text(m.group(1)), _text(m.group(2)), int(m.group(3))
            src, dst = (second, first) if line.startswith("sendfile(") else (first, second)
            if ours(dst):
                key = (os.path.basename(src), os.path.basename(dst))
                if ret > 0:
                    ops.append(("copy",) + key + (cursor.get(key, 0), ret))
                    cursor[key] = cursor.get(key, 0) + ret
                else:
                    cursor.pop(key, None)
        elif line.startswith("write("):
            m = _WRITE.match(line)
            if m is None:
                continue
            fd, path, data, _, _ = m.groups()
            path = _text(path)
            if fd == "1" and pid == main:
                ops.append(("stdout", bytes.fromhex(data.replace("\\x", ""))))
            elif ours(path):
                raise ValueError(f"write() to {path}: this replay follows pwrite64 only")
    return ops


def _as_write(files, op):
    """A ("copy", ...) operation as the write it amounts to, given the current ``files``; others unchanged."""
    if op[0] != "copy":
        return op
    _, src, dst, offset, count = op
    return ("write", dst, offset, bytes(files[src][offset : offset + count]))


def _apply(files, op):
    kind = op[0]
    if kind == "write":
        _, name, offset, data = op
        buf = files.setdefault(name, bytearray())
        if len(buf) < offset + len(data):
            buf.extend(bytes(offset + len(data) - len(buf)))
        buf[offset : offset + len(data)] = data
    elif kind == "truncate":
        _, name, size = op
        buf = files.setdefault(name, bytearray())
        if len(buf) < size:
            buf.extend(bytes(size - len(buf)))
        else:
            del buf[size:]
    elif kind == "rename":
        _, old, new = op
        files[new] = files.pop(old)


def crash_states(ops, name, initial=None):
    """Yield (label, content of file ``name`` or None, stdout so far) for every state a SIGKILL can leave:
    after each operation, and inside each write that crosses a page boundary, after each of its pages.
    ``initial`` maps file names to their content before the traced process started."""
    files, stdout = {k: bytearray(v) for k, v in (initial or {}).items()}, b""

    def state(label):
        buf = files.get(name)
        return label, None if buf is None else bytes(buf), stdout

    yield state("before any write")
    for i, op in enumerate(ops):
        if op[0] == "stdout":
            stdout += op[1]
            continue
        op = _as_write(files, op)
        if op[0] == "write" and op[1] == name and name in files:
            _, _, offset, data = op
            for cut in range((offset // PAGE + 1) * PAGE, offset + len(data), PAGE):
                torn = bytearray(files[name])
                _apply({name: torn}, ("write", name, offset, data[: cut - offset]))
                yield f"inside write {i} ({len(data)} bytes at {offset}, torn at {cut})", bytes(torn), stdout
        _apply(files, op)
        yield state(f"after operation {i} ({op[0]})")


def torn_rewrites(ops, name, initial=None):
    """Writes to file ``name`` that overwrite bytes it already holds and cross a page boundary: the writes a
    SIGKILL could tear into a mix of new and old content (a write to fresh space is unreferenced until a
    later write points to it). Returns (operation index, offset, size, first 4 bytes) of each."""
    held = {k: bytearray(b"\1" * len(v)) for k, v in (initial or {}).items()}  # 1 where a file holds bytes
    found = []
    for i, op in enumerate(ops):
        if op[0] == "stdout":
            continue
        op = _as_write(held, op)
        if op[0] == "write":
            _, target, offset, data = op
            end = offset + len(data)
            if target == name and any(held.get(target, b"")[offset:end]) and offset // PAGE != (end - 1) // PAGE:
                found.append((i, offset, len(data), ops[i][-1][:4] if ops[i][0] == "write" else b""))
            op = ("write", target, offset, b"\1" * len(data))
        _apply(held, op)
    return found
