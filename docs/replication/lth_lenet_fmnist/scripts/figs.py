"""Draw the key figures of lenet300_100_fmnist from tables in a folder with lth's own figure
functions (the `lth figure` verb's code), settings from the preset as the workflow gives them."""
import sys
from pathlib import Path

import yaml

from lth.plan.config_checks import with_defaults
from lth.report.figure_files import save_figure
from lth.report.figures import FIGURES
from lth.report.style import style_from_config
from lth.report.tables import read_tables

tables_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
cfg = with_defaults(yaml.safe_load(Path("workflow/presets/lth_lenet_fmnist.yaml").read_text()),
                    "workflow/schemas/config.schema.yaml")
style = style_from_config(cfg["figures"])
names = sys.argv[3:]
reads = {t for n in names for t in FIGURES[n].reads} | {"summary", "layers", "curves"}
paths = {t: tables_dir / f"{t}.csv" for t in reads if (tables_dir / f"{t}.csv").exists()}
tables = read_tables(paths)
out_dir.mkdir(parents=True, exist_ok=True)
for name in names:
    fig = FIGURES[name].make(tables, style)
    print(name, "no data" if fig is None else save_figure(fig, out_dir / name, style))
