"""Writes base/monitoring/prometheusrule.yaml from base/monitoring/alerts.rules.yaml (run after editing the
rules; `validate` fails while the two differ). Usage: python3 deploy/k8s/tools/prometheusrule.py"""

import pathlib

import yaml

BASE = pathlib.Path(__file__).resolve().parent.parent / "base" / "monitoring"


class Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the PromQL reads as in the rules file)."""


def _str(dumper, text):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


Dumper.add_representer(str, _str)


def main():
    rules = yaml.safe_load((BASE / "alerts.rules.yaml").read_text())
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tradestream"},
        "spec": {"groups": rules["groups"]},
    }
    header = (
        "# Generated from alerts.rules.yaml by deploy/k8s/tools/prometheusrule.py: edit the rules file, then run it.\n"
    )
    text = yaml.dump(resource, Dumper=Dumper, sort_keys=False, width=120)
    (BASE / "prometheusrule.yaml").write_text(header + text)


if __name__ == "__main__":
    main()
