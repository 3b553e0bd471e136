"""Write an example data file for `isosweep run custom`: a 3-D Gaussian with its exact density.

    python examples/gaussian.py gaussian.csv [ROWS]      (ROWS default 4000; .parquet also works)

Columns: x0, x1, x2, a Gaussian with variances 1/6, 2/3 and 8/3 (the toy sources' 1 : 4 : 16,
docs/method.md 5.1) along rotated axes and shifted off the origin; p, its exact density p(x), for
`--density-column p`; label, a text column, which the study leaves out of the features. The
rows are the same for the same ROWS (a fixed seed), so the file's SHA-256, and with it every
trial key, is the same on every machine.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

VARIANCES = np.array([1.0 / 6.0, 2.0 / 3.0, 8.0 / 3.0])


def gaussian_table(rows: int = 4000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    s = rng.normal(size=(rows, 3)) * np.sqrt(VARIANCES)
    x = s @ rotation.T + np.array([1.0, -2.0, 0.5])
    log_p = -0.5 * (s * s / VARIANCES).sum(axis=1) - 0.5 * np.log(2.0 * np.pi * VARIANCES).sum()
    return pa.table(
        {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "p": np.exp(log_p), "label": [f"row{i}" for i in range(rows)]}
    )


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    table = gaussian_table(int(argv[1]) if len(argv) > 1 else 4000)
    if argv[0].endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, argv[0])
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, argv[0])
    print(f"{argv[0]}: {table.num_rows} rows, columns {', '.join(table.column_names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
