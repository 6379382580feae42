"""Finding, downloading and verifying official weight files.

``weights="imagenet"`` resolves a file in this order:

1. every directory in ``KAPPS_WEIGHTS_DIR`` (``os.pathsep``-separated): offline copies;
2. Keras' own cache, ``$KERAS_HOME/models`` (default ``~/.keras/models``);
3. the kapps cache, ``$KAPPS_CACHE_DIR`` (default ``~/.cache/kapps/weights``);
4. a download into the kapps cache from the manifest's URL (or from
   ``$KAPPS_WEIGHTS_MIRROR``, which replaces Keras' bucket prefix, and
   ``$KAPPS_TORCHVISION_MIRROR``, which replaces torchvision's, ``$KAPPS_TIMM_MIRROR`` the Hugging Face hub's
   for timm's files): streamed to a
   temporary file under a lock, checked against the manifest's size and hash, then
   renamed into place. Nothing is left behind when a check fails.

Hashes are checked whole, except torchvision's ``sha256-prefix``: the file's sha256 must start
with the hex digits torchvision puts in the file name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from typing import IO

import h5py

from kapps.errors import DownloadError, KappsError, WeightsIntegrityError, WeightsNotFoundError
from kapps.utils.files import atomic_path
from kapps.weights.locking import file_lock
from kapps.weights.manifest import KERAS_BUCKET, TIMM_URL, TORCHVISION_URL, WeightFile
from kapps.weights.torch_checkpoint import checkpoint_format

CHUNK = 1 << 20
TIMEOUT_S = 30
#: URL prefix -> the environment variable naming a mirror that replaces it.
MIRRORS = {KERAS_BUCKET: "KAPPS_WEIGHTS_MIRROR", TORCHVISION_URL: "KAPPS_TORCHVISION_MIRROR",
           TIMM_URL: "KAPPS_TIMM_MIRROR"}
#: ``sha256-prefix``: the file's sha256 must start with the published digits (torchvision's file names).
PREFIX_ALGORITHM = "sha256-prefix"


def weights_dirs() -> list[str]:
    """Directories named by ``KAPPS_WEIGHTS_DIR``."""
    value = os.environ.get("KAPPS_WEIGHTS_DIR", "")
    return [os.path.expanduser(d) for d in value.split(os.pathsep) if d]


def keras_cache_dir() -> str:
    """Where ``keras.utils.get_file`` keeps ``keras.applications`` weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def kapps_cache_dir() -> str:
    """The kapps download cache (``$KAPPS_CACHE_DIR`` or ``~/.cache/kapps/weights``)."""
    if os.environ.get("KAPPS_CACHE_DIR"):
        return os.path.expanduser(os.environ["KAPPS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kapps", "weights")


def search_dirs() -> list[tuple[str, str]]:
    """``(label, directory)`` pairs in the order they are searched."""
    dirs = [("KAPPS_WEIGHTS_DIR", d) for d in weights_dirs()]
    dirs.append(("Keras cache", keras_cache_dir()))
    dirs.append(("kapps cache", kapps_cache_dir()))
    return dirs


def download_url(entry: WeightFile) -> str:
    """The URL to fetch ``entry`` from, honouring ``KAPPS_WEIGHTS_MIRROR``, ``KAPPS_TORCHVISION_MIRROR`` and
    ``KAPPS_TIMM_MIRROR``."""
    for prefix, variable in MIRRORS.items():
        mirror = os.environ.get(variable)
        if mirror and entry.url.startswith(prefix):
            return mirror.rstrip("/") + "/" + entry.url[len(prefix):]
    return entry.url


def file_hash(path: str, algorithm: str = "sha256") -> str:
    """Hex digest of a file.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"kapps")
    >>> file_hash(f.name, "md5") == hashlib.md5(b"kapps").hexdigest()
    True
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(entry: WeightFile, path: str) -> None:
    """Raise :class:`WeightsIntegrityError` unless ``path`` has the manifest's size and hash."""
    size = os.path.getsize(path)
    if entry.size is not None and size != entry.size:
        raise WeightsIntegrityError(
            f"{entry.file}: size check failed for {path}: expected {entry.size} bytes, found {size} bytes."
        )
    if entry.hash_value:
        prefix = entry.hash_algorithm == PREFIX_ALGORITHM
        actual = file_hash(path, "sha256" if prefix else entry.hash_algorithm or "sha256")
        if not (actual.startswith(entry.hash_value) if prefix else actual == entry.hash_value):
            expected = f"a sha256 starting with {entry.hash_value}" if prefix else entry.hash_value
            raise WeightsIntegrityError(
                f"{entry.file}: {entry.hash_algorithm} mismatch for {path}: expected {expected}, got {actual}."
            )
    if entry.is_checkpoint:
        try:
            checkpoint_format(path)
        except KappsError as error:
            raise WeightsIntegrityError(f"{entry.file}: {error}") from None
    elif not h5py.is_hdf5(path):
        raise WeightsIntegrityError(f"{entry.file}: {path} is not an HDF5 file.")


def locate(entry: WeightFile) -> str | None:
    """The first verified copy of ``entry`` in the search directories, or None."""
    for _, directory in search_dirs():
        candidate = os.path.join(directory, entry.file)
        if os.path.isfile(candidate):
            verify(entry, candidate)
            return candidate
    return None


class _Progress:
    """A one-line download progress bar on stderr."""

    def __init__(self, label: str, total: int | None, enabled: bool, stream: IO[str] = sys.stderr):
        self.label, self.total, self.enabled, self.stream = label, total, enabled, stream
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.1):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-6) / 1e6
        if self.total:
            width = 30
            filled = int(width * done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{self.label} [{bar}] {done / 1e6:6.1f}/{self.total / 1e6:.1f} MB {rate:5.1f} MB/s"
        else:
            text = f"\r{self.label} {done / 1e6:6.1f} MB {rate:5.1f} MB/s"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


def _stream_to(url: str, out: IO[bytes], label: str, progress: bool) -> int:
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"Downloading {label} from {url} failed: HTTP {e.code} {e.reason}.") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"Downloading {label} from {url} failed: {reason}.") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = _Progress(f"Downloading {label}", total, progress)
        done = 0
        try:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                bar.update(done)
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(f"Downloading {label} from {url} broke off after {done} bytes: {e!r}.") from None
        bar.update(done, final=True)
        if total is not None and done != total:
            raise DownloadError(
                f"Downloading {label} from {url}: truncated transfer, received {done} of {total} bytes."
            )
    return done


def fetch(entry: WeightFile, *, cache_dir: str | None = None, progress: bool = True) -> str:
    """Download ``entry`` into the kapps cache (if not there yet) and return its path.

    Under an exclusive lock, the file is streamed to a temporary name, checked against
    the manifest's size and hash and renamed into place. On any failure nothing is
    left in the cache and a :class:`~kapps.errors.KappsError` says what went wrong.
    """
    cache_dir = cache_dir or kapps_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(cache_dir, entry.file)
    url = download_url(entry)
    lock_dir = os.path.join(cache_dir, ".locks")
    os.makedirs(lock_dir, exist_ok=True)
    with file_lock(os.path.join(lock_dir, entry.file + ".lock")):
        if os.path.isfile(target):  # another process finished it while we waited
            verify(entry, target)
            return target
        with atomic_path(target, verify=lambda tmp: verify(entry, tmp)) as tmp:
            with open(tmp, "wb") as out:
                _stream_to(url, out, entry.file, progress)
    return target


def not_found_message(entry: WeightFile, reason: str) -> str:
    looked = "\n".join(f"    {label}: {d}" for label, d in search_dirs())
    first_dir = weights_dirs()[0] if weights_dirs() else "/path/to/weights"
    return (
        f"ImageNet weights for {entry.describe()} are not available.\n"
        f"  missing file: {entry.file}\n"
        f"  tried to download: {download_url(entry)}\n"
        f"  download failed: {reason}\n"
        f"  looked in:\n{looked}\n"
        "  To make it available, on a machine with network access run\n"
        f"    curl -L -o {entry.file} {entry.url}\n"
        f"  and copy it into a directory named by KAPPS_WEIGHTS_DIR (e.g. export KAPPS_WEIGHTS_DIR={first_dir}),\n"
        "  or into ~/.keras/models, or run `kapps weights fetch "
        f"{entry.file}` where the network is reachable; or pass weights='/path/to/{entry.file}'."
    )


def resolve(entry: WeightFile, *, download: bool = True, progress: bool = True) -> str:
    """A verified local path for ``entry``: found on disk, else downloaded."""
    found = locate(entry)
    if found:
        return found
    if not download:
        raise WeightsNotFoundError(not_found_message(entry, "downloads disabled"))
    try:
        return fetch(entry, progress=progress)
    except DownloadError as e:
        raise WeightsNotFoundError(not_found_message(entry, str(e))) from None
