"""Build `dvc-plots-offline.html`: DVC's plots page with vega, vega-lite and vega-embed inline.

DVC's own page loads these three libraries from a CDN, so its charts stay blank offline. This
template carries them, at the versions DVC 3.67 asks the CDN for, so the page renders with the
network off. Maintainers rerun it (`make plots-template`) to change versions: it fetches each
package from the npm registry with `npm pack`, checks the file's sha256 against the pin below,
and writes the template plus each package's licence next to this script.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "dvc-plots-offline.html"

# name: (version, file inside the npm package, sha256 of that file)
PACKAGES = {
    "vega": (
        "5.20.2",
        "build/vega.min.js",
        "4794d0169cb1f3ebad8117fe98ba5bd652dd725905ec0384e832391dbccb03be",
    ),
    "vega-lite": (
        "5.2.0",
        "build/vega-lite.min.js",
        "d73157451b3978015ab31dacd55ff90d986ab8663fc0abed50f97b3cd90002cb",
    ),
    "vega-embed": (
        "6.18.2",
        "build/vega-embed.min.js",
        "1ba9826431ddc9805e815ad92acc811c819f2bfd32bda2a128b8c4b5070fab5e",
    ),
}

# DVC fills {plot_divs} (and {refresh_tag}); it would put its CDN <script> tags into
# {scripts}, which this page deliberately leaves out.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC plots (offline)</title>
{scripts}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def _member(archive: tarfile.TarFile, path: str) -> bytes:
    handle = archive.extractfile(f"package/{path}")
    if handle is None:
        raise FileNotFoundError(path)
    return handle.read()


def main() -> None:
    blocks = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, path, sha256) in PACKAGES.items():
            subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=tmp, check=True)
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as archive:
                code, licence = _member(archive, path), _member(archive, "LICENSE")
            digest = hashlib.sha256(code).hexdigest()
            if digest != sha256:
                raise SystemExit(f"{name}@{version} {path}: sha256 {digest}, expected {sha256}")
            if b"</script" in code:
                raise SystemExit(f"{name}@{version} {path} cannot be inlined: it contains </script")
            (HERE / f"LICENSE-{name}").write_bytes(licence)
            blocks.append(
                f"    <!-- {name}@{version} {path} (sha256 {sha256}); licence: LICENSE-{name} -->\n"
                f"    <script>{code.decode()}</script>"
            )
    TEMPLATE.write_text(PAGE.format(scripts="\n".join(blocks)), encoding="utf-8")
    print(f"wrote {TEMPLATE}")


if __name__ == "__main__":
    main()
