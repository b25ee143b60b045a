"""``inferwatch report`` and ``inferwatch check``: batch drift and data quality from files.

``check`` exits 0 (no drift, quality fine), 1 (drift or a quality failure) or 2 (bad
input), for cron and CI; ``--push-gateway`` pushes the scores as Prometheus gauges.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferwatch.cli._app import app, default_config, err_console, fail

if TYPE_CHECKING:
    from rich.console import Console

    from inferwatch._typing import Task
    from inferwatch.evaluate import DriftOptions, DriftReport

__all__ = ["check", "report"]

PROGRESS_MIN_ROWS = 200_000  # show a progress bar when the data is at least this large

Reference = Annotated[
    Path, typer.Option("--reference", "-r", help="Reference data: CSV, Parquet or JSONL.")
]
Current = Annotated[Path, typer.Option("--current", help="Current data: CSV, Parquet or JSONL.")]
ReferenceOrProfile = Annotated[
    Path | None,
    typer.Option("--reference", "-r", help="Reference data: CSV, Parquet or JSONL."),
]
CurrentOrProfile = Annotated[
    Path | None, typer.Option("--current", help="Current data: CSV, Parquet or JSONL.")
]
ReferenceProfileOpt = Annotated[
    Path | None,
    typer.Option(
        help="Instead of --reference: a saved reference profile (`inferwatch profile`, or "
        "inferwatch.spark.profile_dataframe for data larger than one machine)."
    ),
]
CurrentProfileOpt = Annotated[
    Path | None,
    typer.Option(
        help="Instead of --current: a profile saved on --reference-profile's bins "
        "(`inferwatch profile DATA --reference-profile R`)."
    ),
]
SchemaOpt = Annotated[
    Path | None, typer.Option("--schema", help="Schema YAML (default: inferred from reference).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="inferwatch.yaml with a 'drift' section.")
]
TargetOpt = Annotated[str | None, typer.Option(help="Target column (not a feature).")]
PredictionOpt = Annotated[str | None, typer.Option(help="Prediction column (not a feature).")]
ScoreOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--score",
        help="Probability column(s) for the model-quality section (repeatable): two classes, "
        "one column, P(the second class in sorted order); more, one per class in that order.",
    ),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="classification or regression: how the target and prediction are judged "
        "(default: inferred; floats and many-valued integers are regression).",
    ),
]
TestOpt = Annotated[
    list[str] | None,
    typer.Option("--test", help="FEATURE=TEST: the drift test for a feature (repeatable)."),
]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option("--threshold", help="FEATURE=VALUE: the threshold for a feature (repeatable)."),
]
ShareOpt = Annotated[
    float | None, typer.Option(help="Dataset drift when this share of features drift (0.5).")
]
CorrectionOpt = Annotated[
    str | None, typer.Option(help="bonferroni or benjamini_hochberg (p-value tests).")
]
FlattenOpt = Annotated[
    list[str] | None,
    typer.Option(help="Nested column whose fields are features (a prediction log: inputs)."),
]
MultivariateOpt = Annotated[
    bool,
    typer.Option(
        "--multivariate/--no-multivariate",
        help="Also test the joint distribution: domain classifier and PCA reconstruction "
        "error on a 20,000-row sample (adds seconds).",
    ),
]


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            fail(f"{what} must look like FEATURE=VALUE, got {item!r}")
        out[key] = value
    return out


def _options(
    config: Path | None,
    tests: list[str] | None,
    thresholds: list[str] | None,
    drift_share: float | None,
    correction: str | None,
    multivariate: bool = False,
) -> DriftOptions:
    drift: dict[str, Any] = {}
    if tests:
        drift["tests"] = _pairs(tests, "--test")
    if thresholds:
        raw = _pairs(thresholds, "--threshold")
        try:
            drift["thresholds"] = {k: float(v) for k, v in raw.items()}
        except ValueError:
            fail(f"--threshold values must be numbers, got {raw}")
    if drift_share is not None:
        drift["drift_share"] = drift_share
    if correction is not None:
        drift["correction"] = correction
    path = default_config(config)
    if path is None and not any(k.startswith("INFERWATCH_") for k in os.environ):
        # No file and no environment to layer: check the flags here and skip loading the
        # pydantic settings (about 20 MB and 0.1 s of a report's start-up).
        return _flag_options(drift, multivariate)
    from inferwatch.config import load_settings

    settings = load_settings(path, {"drift": drift} if drift else None)
    return settings.drift.to_options(multivariate=multivariate)


def _flag_options(drift: dict[str, Any], multivariate: bool) -> DriftOptions:
    """``DriftOptions`` from command-line flags alone, checked as the config would check them."""
    from inferwatch.evaluate import DriftOptions
    from inferwatch.stats import REGISTRY

    for feature, name in drift.get("tests", {}).items():
        if name not in REGISTRY:
            known = ", ".join(REGISTRY)
            fail(f"--test {feature}={name}: no drift test named {name!r}; available: {known}")
    share = drift.get("drift_share", 0.5)
    if not 0 < share <= 1:
        fail(f"--drift-share must be in (0, 1], got {share}")
    correction = drift.get("correction")
    if correction not in (None, "bonferroni", "benjamini_hochberg"):
        fail(f"--correction must be bonferroni or benjamini_hochberg, got {correction!r}")
    return DriftOptions.from_settings(drift, multivariate=multivariate)


def _arrow_memory_pool() -> None:
    """Use jemalloc for Arrow's buffers in this process: it hands freed column buffers back
    sooner than the default (mimalloc), which keeps a report's peak memory lower (about
    -10% at 100k rows).  A composition-root choice: library code leaves the pool alone."""
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # give freed pages back at once, not after 10 s
    except (NotImplementedError, AttributeError):  # a pyarrow built without jemalloc
        return


def _run(
    reference: Path,
    current: Path,
    schema_path: Path | None,
    target: str | None,
    prediction: str | None,
    flatten: list[str] | None,
    options: DriftOptions,
    quiet: bool,
    model_task: str | None = None,
    scores: list[str] | None = None,
) -> tuple[DriftReport, dict[str, Any]]:
    from inferwatch.io import load_schema
    from inferwatch.report import LoadedData, build_report, report_dict

    started = time.perf_counter()
    _arrow_memory_pool()
    schema = load_schema(schema_path) if schema_path is not None else None
    bar: list[Any] = []  # (progress, task) once the files are known to be large
    loaded: list[LoadedData] = []

    def on_loaded(data: LoadedData) -> None:
        loaded.append(data)
        big = max(data.n_reference, data.n_current) >= PROGRESS_MIN_ROWS
        if big and not quiet:  # rich's progress machinery loads only then (start-up)
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            progress = Progress(
                TextColumn("[bold]drift[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err_console,
                transient=True,
            )
            progress.start()
            roles = (data.schema.prediction, data.schema.target)
            n = len(data.schema.features) + sum(r is not None for r in roles)
            bar.extend((progress, progress.add_task(f"{data.n_current:,} rows", total=n)))

    def on_column(_: str) -> None:
        if bar:
            bar[0].advance(bar[1])

    try:
        result = build_report(
            reference,
            current,
            schema=schema,
            target=target,
            prediction=prediction,
            flatten=tuple(flatten or ()),
            options=options,
            task=_task(model_task),
            on_loaded=on_loaded,
            progress=on_column,
        )
    finally:
        if bar:
            bar[0].stop()
    performance = None
    if loaded:  # realised model quality when the files hold a target and a prediction
        from inferwatch.report._performance import performance_section

        performance = performance_section(loaded[0], tuple(scores or ()))
    data = report_dict(result, reference=reference, current=current, started=started)
    if performance is not None:
        data["performance"] = performance
    return result, data


def _task(task: str | None) -> Task | None:
    if task not in (None, "classification", "regression"):
        fail(f"--task must be classification or regression, got {task!r}")
    return task  # type: ignore[return-value]


def _write(data: dict[str, Any], output: Path) -> None:
    """Write the report (``_prepare_output`` checked the suffix and made the folder)."""
    if output.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        from inferwatch.report import render_html

        text = render_html(data)
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"--output {output}: cannot write it: {exc.strerror or exc}")


LOG_WIDTH = 1_000  # columns of the summary when stderr is not a terminal


def _log_console() -> Console:
    """stderr as wide as the summary needs when it is not a terminal (a CI log, a pipe):
    rich would otherwise cut the table to 80 columns, or to $COLUMNS."""
    if err_console.is_terminal:
        return err_console
    from rich.console import Console

    return Console(stderr=True, width=LOG_WIDTH)


QUALITY_LINE: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc", "ece"),
    "regression": ("mae", "rmse", "r2", "mean_error"),
}


def _quality_line(perf: Any) -> None:
    """One line of realised model quality, reference -> current (the report's section)."""
    if not isinstance(perf, dict):
        return

    def shown(side: str, key: str) -> str:
        value = ((perf.get(side) or {}).get("metrics") or {}).get(key)
        return "-" if value is None else f"{value:.4g}"

    parts = [
        f"{key} {shown('reference', key)} -> {shown('current', key)}"
        for key in QUALITY_LINE.get(str(perf.get("task")), ())
    ]
    _log_console().print("model quality (reference -> current): " + ", ".join(parts),
                         highlight=False)  # fmt: skip


def _summary(result: DriftReport) -> None:
    from rich.table import Table

    out = _log_console()
    table = Table(title=None, show_edge=False, pad_edge=False)
    for col in ("feature", "kind", "test", "statistic", "p-value", "threshold", "drift", "quality"):
        table.add_column(col)
    rows = list(result.features)
    rows += [r for r in (result.prediction_drift, result.target_drift) if r is not None]
    for f in rows:
        r = f.result
        problems = ", ".join(f.quality.problems) if f.quality else ""
        if r is None:
            shown = "; ".join(x for x in (problems, f.error) if x)  # quality without a verdict
            table.add_row(f.name, f.kind, "-", "-", "-", "-", "[yellow]n/a[/]", shown)
            continue
        table.add_row(
            f.name + (f" ({f.role})" if f.role != "feature" else ""),
            f.kind,
            r.test,
            f"{r.statistic:.4g}",
            "-" if r.p_value is None else f"{r.p_value:.3g}",
            f"{r.threshold:g}",
            "[red]DRIFT[/]" if r.drift_detected else "[green]ok[/]",
            problems,
        )
    out.print(table)
    verdict = "[red]dataset drift[/]" if result.dataset_drift else "[green]no dataset drift[/]"
    out.print(
        f"{verdict}: {len(result.drifted)} of {len(result.evaluated)} features drifted "
        f"(share {result.drift_share:.2f}, threshold {result.drift_share_threshold:g}); "
        f"data quality {'[red]failed[/]' if result.quality.failed else '[green]ok[/]'}",
        highlight=False,
    )
    for m in result.multivariate:
        skipped = m.details.get("skipped")
        verdict = "[red]DRIFT[/]" if m.drift_detected else "[green]ok[/]"
        shown = (
            f"[yellow]skipped[/] ({skipped})"
            if skipped
            else f"{verdict} (statistic {m.statistic:.4g}, threshold {m.threshold:.4g})"
        )
        out.print(f"multivariate {m.method}: {shown}", highlight=False)


def _run_profiles(
    reference: Path, current: Path, options: DriftOptions
) -> tuple[DriftReport, dict[str, Any]]:
    """The report of two saved profiles: the profile engine (``LiveEvaluator``) with the
    tests' nominal thresholds, as the file report judges (no calibration), and the
    reference's distinct-value counts for the default test rule."""
    from inferwatch.errors import InputFileError
    from inferwatch.evaluate import LiveEvaluator
    from inferwatch.io import load_profile
    from inferwatch.report import report_dict
    from inferwatch.report._build import check_overrides

    started = time.perf_counter()
    try:
        ref, cur = load_profile(reference), load_profile(current)
    except InputFileError as exc:
        fail(str(exc))
    if cur.profile.bins != ref.profile.bins:
        fail(
            f"--current-profile {current} was not profiled on the bins of "
            f"--reference-profile {reference}; profile the current data with "
            f"`inferwatch profile DATA --reference-profile {reference}`"
        )
    schema = ref.profile.bins.schema_
    check_overrides(schema, options)
    evaluator = LiveEvaluator(
        ref.profile,
        schema,
        options=options,
        min_window_rows=1,
        calibration="fixed",
        n_unique=ref.n_unique,
    )
    result = evaluator.evaluate(cur.profile)
    data = report_dict(result, reference=reference, current=current, started=started)
    data["meta"]["from_profiles"] = True
    return result, data


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="OUT.json or OUT.html.")],
    reference: ReferenceOrProfile = None,
    current: CurrentOrProfile = None,
    reference_profile: ReferenceProfileOpt = None,
    current_profile: CurrentProfileOpt = None,
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    prediction: PredictionOpt = None,
    task: TaskOpt = None,
    test: TestOpt = None,
    threshold: ThresholdOpt = None,
    drift_share: ShareOpt = None,
    correction: CorrectionOpt = None,
    flatten: FlattenOpt = None,
    multivariate: MultivariateOpt = False,
    score: ScoreOpt = None,
) -> None:
    """Compare current data with the reference: drift per feature and data quality (and
    model quality when both files' rows carry --target and --prediction); or two saved
    profiles (--reference-profile, --current-profile) of data of any size."""
    profiles = reference_profile is not None or current_profile is not None
    if profiles and (reference is not None or current is not None):
        fail("give data files (--reference, --current) or profiles, not both")
    if profiles and (reference_profile is None or current_profile is None):
        fail("--reference-profile and --current-profile go together")
    if not profiles and (reference is None or current is None):
        fail(
            "give --reference and --current (data files), or --reference-profile and "
            "--current-profile (saved profiles)"
        )
    if profiles:
        given = [
            flag
            for flag, value in (
                ("--schema", schema), ("--target", target), ("--prediction", prediction),
                ("--task", task), ("--flatten", flatten), ("--score", score),
                ("--multivariate", multivariate),
            )
            if value
        ]  # fmt: skip
        if given:
            fail(
                f"{', '.join(given)}: not available with profiles (a profile holds its "
                "schema, and no rows for model quality or the multivariate tests)"
            )
    _prepare_output(output)
    options = _options(config, test, threshold, drift_share, correction, multivariate)
    if profiles:
        assert reference_profile is not None
        assert current_profile is not None
        result, data = _run_profiles(reference_profile, current_profile, options)
    else:
        assert reference is not None
        assert current is not None
        result, data = _run(
            reference, current, schema, target, prediction, flatten, options, False, task, score
        )
    _write(data, output)
    err_console.print(
        f"wrote {output}: {len(result.drifted)} of {len(result.evaluated)} features drifted "
        f"in {data['meta']['duration_seconds']:.2f}s",
        highlight=False,
    )


@app.command()
def check(
    reference: Reference,
    current: Current,
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    prediction: PredictionOpt = None,
    task: TaskOpt = None,
    test: TestOpt = None,
    threshold: ThresholdOpt = None,
    drift_share: ShareOpt = None,
    correction: CorrectionOpt = None,
    flatten: FlattenOpt = None,
    multivariate: MultivariateOpt = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write OUT.json or OUT.html.")
    ] = None,
    push_gateway: Annotated[
        str | None, typer.Option(help="Pushgateway URL to push the drift scores to.")
    ] = None,
    job: Annotated[str, typer.Option(help="Pushgateway job name.")] = "inferwatch_check",
    model: Annotated[str, typer.Option(help="'model' label of the pushed metrics.")] = "default",
    version: Annotated[str, typer.Option(help="'version' label of the pushed metrics.")] = "1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON to stdout.")] = False,
    score: ScoreOpt = None,
) -> None:
    """Exit 0 when nothing drifted and quality is fine, 1 on drift (dataset or, with
    --multivariate, joint) or a quality failure, 2 on bad input (for cron and CI)."""
    if push_gateway:
        _check_gateway(push_gateway)
    if output is not None:
        _prepare_output(output)
    options = _options(config, test, threshold, drift_share, correction, multivariate)
    result, data = _run(
        reference, current, schema, target, prediction, flatten, options, as_json, task, score
    )
    if output is not None:
        _write(data, output)
    if push_gateway:
        _push(data, push_gateway, job=job, model=model, version=version)
    if as_json:
        print(json.dumps(data))
    else:
        _summary(result)
        _quality_line(data.get("performance"))
    sys.stdout.flush()
    raise typer.Exit(1 if result.failed else 0)


def _check_gateway(url: str) -> None:
    """Refuse a Pushgateway address that is no URL before the report runs (the push comes
    last, and http.client would raise from deep inside prometheus_client)."""
    from urllib.parse import urlsplit

    example = "expected an address like http://127.0.0.1:9091"
    full = url if "://" in url else f"http://{url}"  # prometheus_client adds http:// too
    try:
        parts = urlsplit(full)
        parts.port  # noqa: B018  (parses the port: ValueError when it is no number)
    except ValueError:
        fail(f"--push-gateway {url!r} is not a URL; {example}")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or ord(c) < 32 for c in full)
    ):
        fail(f"--push-gateway {url!r} is not a URL; {example}")


def _prepare_output(output: Path) -> None:
    """Check the output's type and create its folder before the report runs, so a bad
    path costs no wait and gives a message, not a traceback after the work."""
    if output.suffix.lower() not in (".json", ".html", ".htm"):
        fail(f"--output must end in .json or .html, got {output.name!r}")
    blocking = next((d for d in (output.parent, *output.parent.parents) if d.exists()), None)
    if blocking is not None and not blocking.is_dir():
        fail(f"--output {output}: {blocking} is a file, not a folder")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--output {output}: cannot create the folder {output.parent}: {exc.strerror or exc}")
    if output.is_dir():
        fail(f"--output {output} is a folder; give a file name ending in .json or .html")


def _push(data: dict[str, Any], url: str, *, job: str, model: str, version: str) -> None:
    from prometheus_client import CollectorRegistry, push_to_gateway

    from inferwatch.metrics import DriftCollector

    registry = CollectorRegistry()
    registry.register(DriftCollector(data, model=model, version=version))
    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key={"model": model}, timeout=10)
    except (OSError, ValueError) as exc:  # ValueError: http.client.InvalidURL and kin
        fail(f"cannot push to the Pushgateway at {url}: {exc}")
    err_console.print(f"pushed drift scores to {url} (job {job})", highlight=False)
