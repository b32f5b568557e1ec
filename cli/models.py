"""`zoo list` and `zoo summary`: the registry's models, and one model layer by layer."""

from __future__ import annotations

import click

from .app import axes, console, count, echo_json, json_option, main, shape, table


@main.command("list")
@click.argument("pattern", default="*")
@json_option()
def list_cmd(pattern: str, as_json: bool):
    """List the models whose name matches PATTERN (shell wildcards, e.g. 'mnist*').

    Each row: name, task, input shape, classes, parameters, MACs, the paper
    or tutorial the model reproduces, and its pretrained weights (MODEL.TAG,
    usable wherever a run is: zoo predict lenet5.mnist photo.png). Models that
    another package adds (its `zoo.models` entry point) name that package. A
    pattern that matches nothing prints an empty table.
    """
    from zoo.inspect.summary import model_table
    from zoo.models.registry import get_entry

    rows = model_table(pattern)
    for row in rows:
        # the distribution a plugin model came from; null for zoo's own
        row.setdefault("package", get_entry(row["name"]).source)
    if as_json:
        echo_json(rows)
        return
    _print_models(rows, title=f"zoo models matching '{pattern}'" if pattern != "*" else "zoo models")


def _print_models(rows, *, title: str, sizes: bool = False) -> None:
    columns = [("name", "left"), ("task", "left"), ("input", "left"), ("classes", "right"),
               ("params", "right"), ("MACs", "right")]
    columns += [("fp32 KB", "right"), ("int8 KB", "right")] if sizes else [("reference", "left"),
                                                                          ("pretrained (test accuracy)", "left")]
    # only when another package's model is listed: zoo's own table keeps its columns
    packages = any(row.get("package") for row in rows)
    columns += [("package", "left")] if packages else []
    made = table(title, columns)
    for row in rows:
        name = row["name"] + (f" ({', '.join(row['aliases'])})" if row["aliases"] else "")
        cells = [name, row["task"], shape(row["input_shape"]), str(row["num_classes"]),
                 count(row["params"]), count(row["macs"])]
        if sizes:
            cells += [f"{row['weights_kb']['float32']:,.1f}", f"{row['weights_kb']['int8']:,.1f}"]
        else:
            cells += [row["reference"], ", ".join(f"{p['name']} {p['test_accuracy']:.2%}" for p in row["pretrained"])
                      or "-"]
        cells += [row.get("package") or "zoo"] if packages else []
        made.add_row(*cells)
    console().print(made)


@main.command("summary")
@click.argument("target", required=False)
@click.option("--custom-objects", multiple=True, metavar="MODULE:NAME",
              help="A custom class the model file uses: module:Name or file.py:Name (repeatable).")
@json_option()
def summary_cmd(target: str | None, custom_objects: tuple, as_json: bool):
    """Show a model layer by layer: output shapes, parameters, MACs, receptive fields.

    TARGET is a model name (lenet5), a .keras file, or a run folder or run
    name under the output folder. Without TARGET, one row per model with its
    weight size at float32 and int8.

    \b
    Example:
      zoo summary lenet
      zoo summary saved_models/lenet5/model.keras --json
    """
    if target is None:
        from zoo.inspect.summary import model_table

        rows = model_table()
        if as_json:
            echo_json(rows)
        else:
            _print_models(rows, title="zoo models", sizes=True)
        return

    from zoo import targets
    from zoo.inspect.summary import summarize

    report = summarize(targets.resolve(target, targets.MODELS).model(custom_objects or None))
    if as_json:
        echo_json(report.to_dict())
        return
    _print_summary(report)


def _print_summary(report) -> None:
    made = table(
        f"{report.model}: input {shape(report.input_shape)}",
        [("layer", "left"), ("type", "left"), ("output", "left"), ("params", "right"),
         ("MACs", "right"), ("kernel", "left"), ("stride", "right"), ("padding", "left"),
         ("dilation", "right"), ("RF", "right"), ("jump", "right")],
    )
    for layer in report.layers:
        made.add_row(layer.name, layer.type, shape(layer.output_shape), count(layer.params),
                     count(layer.macs), shape(layer.kernel), axes(layer.strides),
                     layer.padding or "-", axes(layer.dilation), shape(layer.receptive_field),
                     axes(layer.jump))
    out = console()
    out.print(made)
    kb = report.weights_kb
    largest = report.largest_activation
    out.print(
        f"params: {report.params:,} (trainable {report.trainable_params:,}, "
        f"non-trainable {report.non_trainable_params:,})\n"
        f"MACs: {count(report.macs)}\n"
        f"weights: {kb['float32']:,.1f} KB float32, {kb['int8']:,.1f} KB int8\n"
        + (f"largest activation: {largest['layer']} {shape(largest['shape'])} = "
           f"{largest['elements']:,} values ({largest['kb_float32']:,.1f} KB float32)"
           if largest else "largest activation: -"),
        highlight=False,
    )
