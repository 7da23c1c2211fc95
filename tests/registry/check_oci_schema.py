#!/usr/bin/env python3
"""check_oci_schema.py KIND FILE: validates FILE against the OCI image-spec's
published JSON schema for KIND (manifest, index, config, layout), as Debian
ships it (golang-github-opencontainers-image-spec-dev), with Debian's
python3-jsonschema: a check of berth's output against the format's own
definition, not against expectations written by hand. Silent when valid;
otherwise exits non-zero naming the first violation."""
import json
import os
import sys

import jsonschema

SCHEMA_DIR = "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema"
BASE = "https://opencontainers.org/schema/image/"
KINDS = {"manifest": "image-manifest-schema.json", "index": "image-index-schema.json",
         "config": "config-schema.json", "layout": "image-layout-schema.json"}


def load_local(uri):
    """Every schema names the others by URL; all of them are in SCHEMA_DIR
    (nothing is fetched)."""
    name = os.path.basename(uri.split("#")[0].rstrip("/"))
    if not name.endswith(".json"):
        name = KINDS.get(name, name + ".json")
    with open(os.path.join(SCHEMA_DIR, name)) as f:
        return json.load(f)


def main():
    kind, path = sys.argv[1], sys.argv[2]
    schema = load_local(BASE + KINDS[kind])
    resolver = jsonschema.RefResolver(base_uri=BASE + KINDS[kind], referrer=schema,
                                      handlers={"https": load_local, "http": load_local})
    with open(path) as f:
        doc = json.load(f)
    try:
        jsonschema.Draft4Validator(schema, resolver=resolver).validate(doc)
    except jsonschema.ValidationError as e:
        sys.exit(f"check_oci_schema: {path} is not a valid OCI {kind}: {e.message} "
                 f"(at {'/'.join(map(str, e.absolute_path)) or 'the top'})")


main()
