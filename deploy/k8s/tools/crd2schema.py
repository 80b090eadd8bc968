"""Turns CustomResourceDefinitions into the JSON schemas kubeconform reads.

Usage: python3 crd2schema.py OUT_DIR CRD.yaml...

Writes OUT_DIR/<group>/<kind>_<version>.json for every served version of every CRD (kubeconform's
`-schema-location 'OUT_DIR/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`). The OpenAPI v3
schema of a CRD is nearly JSON Schema; what differs is translated: `nullable`, `x-kubernetes-int-or-string`,
and strictness: an object that lists its `properties` and neither allows other keys nor sets
`x-kubernetes-preserve-unknown-fields` gets `additionalProperties: false`, as the API server prunes unknown
fields there (a misspelt key is an error here, as kubeconform -strict makes it for built-in kinds).
"""

import json
import pathlib
import sys

import yaml


def translate(node):
    """The JSON Schema of one OpenAPI v3 schema node (recursively)."""
    if isinstance(node, list):
        return [translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: translate(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = translate(value) if isinstance(value, (dict, list)) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [translate(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    strict = (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    )
    if strict:
        out["additionalProperties"] = False
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: crd2schema.py OUT_DIR CRD.yaml...")
    out_dir = pathlib.Path(argv[1])
    written = 0
    for path in argv[2:]:
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"].lower()
            for version in spec["versions"]:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if not version.get("served", True) or schema is None:
                    continue
                target = out_dir / group / f"{kind}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(translate(schema), indent=1, sort_keys=True))
                written += 1
    if written == 0:
        sys.exit(f"no CRD schema found in {argv[2:]}")
    print(f"{written} schemas written to {out_dir}")


if __name__ == "__main__":
    main(sys.argv)
