"""The weight loader: manifest, offline directories, caches, downloads, HDF5 by name, PyTorch checkpoints."""

from kapps.weights.h5io import copy_weights_by_name, load_weights_by_name, read_weight_file, write_legacy_h5
from kapps.weights.manifest import WeightFile, all_files, by_file_name, files_for, find
from kapps.weights.store import fetch, file_hash, locate, resolve, search_dirs, verify
from kapps.weights.torch_checkpoint import read_checkpoint, state_dict
from kapps.weights.torch_mapping import assign_state_dict, convert_state_dict
from kapps.weights.converted import resolve_converted

__all__ = [
    "WeightFile", "all_files", "by_file_name", "files_for", "find",
    "fetch", "file_hash", "locate", "resolve", "search_dirs", "verify",
    "load_weights_by_name", "copy_weights_by_name", "read_weight_file", "write_legacy_h5",
    "read_checkpoint", "state_dict", "assign_state_dict", "convert_state_dict", "resolve_converted",
]
