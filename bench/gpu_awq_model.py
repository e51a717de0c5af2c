"""Quantize a Hugging Face checkpoint's linear layers to a synthetic 4-bit AWQ (GEMM) checkpoint, on the GPU.

    python3 bench/gpu_awq_model.py SRC_DIR DEST_DIR [GROUP_SIZE]

Used on the GPU host to serve a Mistral-7B-shaped AWQ checkpoint with `option.quantize=awq` (the random weights
of shared/gpu/mkmodel.py, quantized with the same code as the tests' tiny AWQ model). Embeddings, norms and
lm_head stay float16.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path


def main() -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from tests.tiny_models import awq_quantize

    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    group_size = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    start = time.time()
    dest.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.suffix != ".safetensors" and path.name not in ("config.json", "model.safetensors.index.json"):
            shutil.copy(path, dest / path.name)
    tensors = {}
    for shard in sorted(src.glob("*.safetensors")):
        for name, tensor in load_file(str(shard), device="cuda" if torch.cuda.is_available() else "cpu").items():
            if name.endswith("_proj.weight"):
                prefix = name.removesuffix(".weight")
                qweight, qzeros, scales = awq_quantize(tensor, group_size)
                tensors.update({f"{prefix}.qweight": qweight.cpu(), f"{prefix}.qzeros": qzeros.cpu(),
                                f"{prefix}.scales": scales.cpu()})
            else:
                tensors[name] = tensor.to(torch.float16).cpu()
    save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((src / "config.json").read_text())
    config.update(torch_dtype="float16", quantization_config={
        "quant_method": "awq", "bits": 4, "group_size": group_size, "zero_point": True, "version": "gemm",
        "modules_to_not_convert": None})
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    size = sum(f.stat().st_size for f in dest.glob("*.safetensors")) / 1e9
    print(f"{dest}: AWQ group {group_size}, {size:.2f} GB, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
