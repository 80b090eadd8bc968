"""Kubernetes JSON schemas for kubeconform from the PyPI package kubernetes-validate.

Usage: python3 k8s_schemas.py WHEEL K8S_VERSION OUT_DIR

The wheel ships, per Kubernetes version, one schema file per kind (`deployment-apps-v1.json`, …) in strict
form (`additionalProperties: false`), all referring to one shared `/api/_definitions.json` that its own
validator resolves. kubeconform reads a schema file on its own, so each file is written standalone: the
definitions it reaches (transitively) are copied into its `$defs` and its references point there.
"""

import json
import pathlib
import sys
import zipfile

# How a kind's file refers to a shared definition, and how the definitions refer to each other.
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def definition(ref):
    """The definition name a `$ref` points at, or None."""
    for prefix in PREFIXES:
        if isinstance(ref, str) and ref.startswith(prefix):
            return ref[len(prefix):]
    return None


def refs(node, found):
    """Adds the definition names `node` refers to."""
    if isinstance(node, dict):
        name = definition(node.get("$ref"))
        if name is not None:
            found.add(name)
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def local(node):
    """`node` with its references pointing into its own `$defs`."""
    if isinstance(node, dict):
        out = {key: local(value) for key, value in node.items()}
        name = definition(out.get("$ref"))
        if name is not None:
            out["$ref"] = "#/$defs/" + name
        return out
    if isinstance(node, list):
        return [local(value) for value in node]
    return node


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: k8s_schemas.py WHEEL K8S_VERSION OUT_DIR")
    wheel, version, out_dir = argv[1], argv[2], pathlib.Path(argv[3])
    base = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(base) and n.endswith(".json")]
        if not names:
            sys.exit(f"{wheel} has no schemas for Kubernetes {version}")
        definitions = json.loads(archive.read(base + "_definitions.json"))["$defs"]
        out_dir.mkdir(parents=True, exist_ok=True)
        written = 0
        for name in names:
            file_name = name[len(base):]
            if file_name.startswith("_") or "/" in file_name:
                continue
            schema = json.loads(archive.read(name))
            needed, todo = set(), set()
            refs(schema, todo)
            while todo:
                item = todo.pop()
                if item in needed:
                    continue
                needed.add(item)
                refs(definitions.get(item, {}), todo)
            schema = local(schema)
            schema.pop("$id", None)  # a remote id would make kubeconform resolve references against it
            schema["$defs"] = {item: local(definitions[item]) for item in sorted(needed) if item in definitions}
            (out_dir / file_name).write_text(json.dumps(schema, separators=(",", ":")))
            written += 1
    print(f"{written} Kubernetes {version} schemas written to {out_dir}")


if __name__ == "__main__":
    main(sys.argv)
