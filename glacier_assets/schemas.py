"""Pandera schemas of the tables the chain writes: the outline inventory and published outlines.

pandera is imported when a schema is built, not with this module: its import sets environment
variables (SPARK_LOCAL_IP, PYARROW_IGNORE_TIMEZONE), and loading the code location must not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import CONTROL_EPOCHS, EPOCHS, INITIAL_EPOCH

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # what any configured id pattern must still satisfy


if TYPE_CHECKING:
    import pandera.pandas as pa


def inventory_schema(id_pattern: str) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "glacier_id": pa.Column(str, [pa.Check.str_matches(id_pattern), pa.Check.str_matches(_ID)]),
            "role": pa.Column(str, pa.Check.isin(["initial", "control"])),
            "year": pa.Column(int, pa.Check.in_range(1900, 2030)),
            "epoch": pa.Column(int, pa.Check.isin(list(EPOCHS))),
            "area_km2": pa.Column(float, pa.Check.gt(0)),
            "source": pa.Column(str),
            "repair": pa.Column(str),  # "" or what was repaired in the outline
        },
        checks=[pa.Check(lambda df: ~df.duplicated(["glacier_id", "role", "year"]), element_wise=False,
                         error="duplicate (glacier_id, role, year)")],
        strict=False,
    )


def published_outline_schema() -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "glacier_id": pa.Column(str, pa.Check.str_matches(_ID)),
            "year": pa.Column(int, pa.Check.isin(list(EPOCHS))),
            "code": pa.Column(int, pa.Check.gt(0)),
            "area_km2": pa.Column(float, pa.Check.gt(0)),
        },
        checks=[pa.Check(lambda df: ~df.duplicated(["glacier_id", "year"]), element_wise=False,
                         error="a glacier appears twice in one epoch")],
        strict=False,
    )


__all__ = ["inventory_schema", "published_outline_schema", "INITIAL_EPOCH", "CONTROL_EPOCHS"]
