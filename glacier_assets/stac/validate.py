"""Offline validation of the catalog's JSON against pystac's bundled STAC core schemas and the
extension schemas in a local folder, with no network."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import orjson


@lru_cache(maxsize=4)
def _offline_schemas(schema_root: str) -> tuple[dict, object]:
    """The STAC core schemas bundled with pystac and the extension schemas under
    `schema_root/<ext>/<version>/schema.json`, with a registry that resolves their references
    among themselves only: validation never touches the network."""
    from pystac.validation.local_validator import get_local_schema_cache
    from referencing import Registry, Resource

    schemas = dict(get_local_schema_cache())
    for path in Path(schema_root).glob("*/v*/schema.json"):
        schemas[f"https://stac-extensions.github.io/{path.parts[-3]}/{path.parts[-2]}/schema.json"] = \
            json.loads(path.read_text())
    return schemas, Registry().with_resources([(k, Resource.from_contents(v)) for k, v in schemas.items()])


def validate_objects(paths: list[Path], schema_root: Path) -> list[str]:
    """Validate STAC JSON files against their core schema and every extension schema they list,
    offline (jsonschema with pystac's bundled core schemas), each schema compiled once. Returns
    the problems, one line each (empty when all are valid)."""
    import jsonschema
    from pystac import STACObjectType
    from pystac.validation.schema_uri_map import DefaultSchemaUriMap

    schemas, registry = _offline_schemas(str(schema_root))
    kinds = {"Feature": STACObjectType.ITEM, "Catalog": STACObjectType.CATALOG, "Collection": STACObjectType.COLLECTION}
    uri_map, compiled, problems = DefaultSchemaUriMap(), {}, []
    for p in paths:
        obj = orjson.loads(Path(p).read_bytes())
        core = uri_map.get_object_schema_uri(kinds[obj["type"]], obj["stac_version"])
        for uri in [core, *obj.get("stac_extensions", [])]:
            if uri not in schemas:
                problems.append(f"{p}: schema not available offline: {uri}")
                continue
            if uri not in compiled:
                cls = jsonschema.validators.validator_for(schemas[uri])
                cls.check_schema(schemas[uri])
                compiled[uri] = cls(schemas[uri], registry=registry)
            best = jsonschema.exceptions.best_match(compiled[uri].iter_errors(obj))
            if best is not None:
                problems.append(f"{p}: {obj['type']} {obj.get('id')} fails {uri}: "
                                f"{best.message.splitlines()[0][:300]}")
    return problems
