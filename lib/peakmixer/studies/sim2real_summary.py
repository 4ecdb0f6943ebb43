"""What the sim-to-real tables say: per version and set, the summary, the verdict in words, bootstrap
intervals, the labels no model finds, and the README's sim-to-real section made from the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from peakmixer.data.dataset import DatasetError
from peakmixer.paths import REPO_ROOT
from peakmixer.studies.sim2real import (
    BOOT_DRAWS,
    BOOT_SEED,
    LABELS_NAME,
    PREDICTIONS_NAME,
    STORE,
    generator_key,
    main_size,
    read_predictions,
    validation_name,
    with_set_size,
)
from peakmixer.studies.sim2real_scoring import MIN_CLASS, SHOWN_METRICS
from peakmixer.studies.textbook_rule import BANDS_NAME, CHANCE_BAND


def bootstrap_micro_f1(
    predictions: pd.DataFrame, real_set: str, draws: int = BOOT_DRAWS, seed: int = BOOT_SEED
) -> dict[str, np.ndarray]:
    """Micro-F1 on `draws` resamples (with replacement) of the spectra of `real_set`: per generator (its
    `generator_key`: version, and set size where not the main one) the mean over its seeds, and
    ``"majority"`` (each label in at least half of the whole set). Every generator, seed and the baseline
    see the same resamples: the difference of two arrays is a paired bootstrap."""
    part = predictions[predictions["real_set"] == real_set].sort_values("spectrum", kind="stable")
    if part.empty:
        raise DatasetError(f"the predictions table has no spectrum of the real set {real_set!r}")
    n = part["spectrum"].nunique()
    # times each spectrum is drawn, per resample: micro-F1 sums tp / fp / fn over the drawn spectra
    drawn = np.stack(
        [np.bincount(row, minlength=n) for row in np.random.default_rng(seed).integers(0, n, (draws, n))]
    )

    def resampled_f1(truth: list[set[str]], predicted: list[set[str]]) -> np.ndarray:
        c = np.array([[len(t & p), len(p - t), len(t - p)] for t, p in zip(truth, predicted, strict=True)])
        tp, fp, fn = (drawn @ c).T
        return 2 * tp / np.maximum(2 * tp + fp + fn, 1)

    truth_text = part.drop_duplicates("spectrum")["truth"].to_numpy()
    per_seed: dict[str, list[np.ndarray]] = {}
    main = main_size(part["n_synthetic"])
    for (version, size, seed_), run in part.groupby(["version", "n_synthetic", "seed"], sort=False):
        # pairing needs every run to hold each spectrum once, in the same order, with the same truth
        spectra, truths = run["spectrum"].to_numpy(), run["truth"].to_numpy()
        if not (np.array_equal(spectra, np.arange(n)) and np.array_equal(truths, truth_text)):
            raise DatasetError(
                f"{real_set}: v{generator_key(version, size, main)} seed {seed_} does not hold spectra "
                f"0..{n - 1} once each with the true labels of the other runs"
            )
        f1 = resampled_f1(_sets(run["truth"]), _sets(run["predicted"]))
        per_seed.setdefault(generator_key(version, size, main), []).append(f1)
    out = {version: np.mean(f1s, axis=0) for version, f1s in per_seed.items()}
    truth = _sets(pd.Series(truth_text))
    shared = {lab for lab in set().union(*truth) if sum(lab in t for t in truth) >= n / 2}
    out["majority"] = resampled_f1(truth, [shared] * n)
    return out


def _sets(column: pd.Series) -> list[set[str]]:
    """Label sets from their text; ``""`` (no label) splits to ``{""}``, hence the removal."""
    return [set(text.split(";")) - {""} for text in column]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per real set, scorer, version and synthetic set size (baselines do not depend
    on the seed)."""
    keys = ["real_set", "scorer", "version", "n_synthetic"]
    g = table.groupby(keys, sort=False)
    metrics = [m for m in (*SHOWN_METRICS, "synthetic_test_micro_f1") if m in table]
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = g["seed"].nunique()
    out["spectra"] = g["spectra"].first()
    out["machine"] = (
        _device_names(table)
        .groupby([table[k] for k in keys], sort=False)
        .agg(lambda x: ", ".join(sorted(set(x))) or "not recorded")
    )
    return out.reset_index()


def readme_sim2real(path: Path = STORE) -> str:
    """The README's sim-to-real section, made from the committed ``results/sim2real.csv``."""
    if not path.exists():
        return "No sim-to-real result in the store yet: `python -m peakmixer sim2real --store` makes it."
    table = pd.read_csv(path, dtype={"version": str, "real_set": str, "config_id": str})
    s = summary(table)
    main = main_size(table["n_synthetic"])
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    seeds = sorted(table["seed"].unique().tolist())
    precision = (
        ", ".join(sorted(set(table["precision"]))) if "precision" in table else "precision not recorded"
    )
    lines = [
        f"From `{shown}`: the default training budget (`params/train/synth_ir17.yaml`, "
        f"n = {main} synthetic spectra, seeds {seeds}, "
        f"{precision}; {machines(table)}) trained on **synthetic** spectra only; thresholds "
        "chosen on synthetic validation spectra; real spectra never used in training or tuning. Mean ± sd "
        "over seeds; the baselines know the real set's label shares. The last column is each model's "
        "micro-F1 on its own synthetic test split (how learnable the synthetic task is). Mean ROC-AUC: over "
        f"the labels with at least {MIN_CLASS} spectra with and {MIN_CLASS} without them in the real set, "
        "how well the model's scores rank the spectra, whatever the thresholds (0.5: chance). Ceiling: the "
        "micro-F1 at thresholds fitted on the real set's own labels (in-sample, so not a result: what no "
        "threshold rule that does not see those labels can pass with the same scores); for the majority "
        "baseline, the best label set to name for every spectrum, found the same way (– on rows stored "
        "before it was computed). "
        "The same seed trains another model on another kind of CPU (other kernels, another order of sums): a "
        "rerun on another machine gives other numbers than these, and a comparison of models trained on "
        "different machines names them."
        + (
            " A generator marked with another n trained the same model for the same epochs on that many "
            "spectra (more steps): whether a larger budget than the default would transfer better."
            if (table["n_synthetic"] != main).any()
            else ""
        ),
        "",
        "| real set (spectra) | scorer | generator | micro-F1 | macro-F1 | EMR | mean ROC-AUC | ceiling "
        "| synthetic test micro-F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (real_set, scorer), part in s.groupby(["real_set", "scorer"], sort=False):
        # baselines' rows are alike, but rows stored before a column existed lack it: the first that has it
        for _, r in (part if scorer == "model" else part.bfill().head(1)).iterrows():
            gen = (
                f"synth-ir17 v{generator_key(r['version'], r['n_synthetic'], main)}"
                if scorer == "model"
                else "–"
            )
            cells = [  # a baseline's rows carry the synthetic score of the model they sit beside: not shown
                _cell(r, m)
                if np.isfinite(r.get(f"{m}_mean", np.nan)) and (scorer == "model" or m in SHOWN_METRICS)
                else "–"
                for m in (*SHOWN_METRICS, "synthetic_test_micro_f1")
            ]
            lines.append(
                f"| {real_set} ({int(r['spectra'])}) | {scorer} | {gen} | " + " | ".join(cells) + " |"
            )
    labels_path, predictions_path = path.with_name(LABELS_NAME), path.with_name(PREDICTIONS_NAME)
    labels = (
        with_set_size(pd.read_csv(labels_path, dtype={"version": str}), table)
        if labels_path.exists()
        else None
    )
    weak = weak_labels(s, labels) if labels is not None else []
    predictions = (
        with_set_size(read_predictions(predictions_path), table) if predictions_path.exists() else None
    )
    if predictions is not None:  # intervals only from the very models the table scored
        keys = ["version", "seed", "real_set", "config_id"]
        scored = table.loc[table["scorer"] == "model", keys].astype(str).drop_duplicates()
        predicted = predictions[keys].astype(str).drop_duplicates()
        if set(map(tuple, scored.to_numpy())) != set(map(tuple, predicted.to_numpy())):
            raise DatasetError(
                f"{predictions_path}: its models (version, seed, real set, config id) are not those of "
                f"{path}; write both with one `sim2real --store`"
            )
    free = label_free_errors(predictions) if predictions is not None else []
    bands_path = path.with_name(BANDS_NAME)
    textbook = readme_textbook(pd.read_csv(bands_path), s, labels) if bands_path.exists() else []
    return "\n".join(lines + ["", *verdict(s, predictions), *ceiling_lines(s), *weak, *free, *textbook])


def readme_textbook(bands: pd.DataFrame, s: pd.DataFrame, labels: pd.DataFrame | None) -> list[str]:
    """The README's lines on the textbook rule (`textbook_rule`): per label its ROC-AUC on each real set
    beside that of the set's best generator's model (mean over seeds), and on the newest generator's
    synthetic validation split at the main size; none where nothing is ranked."""
    main = main_size(s["n_synthetic"])
    best = best_at_main(s)
    scored = set(bands.loc[bands["kind"] == "real", "set"])
    real_sets = [r for r in dict.fromkeys(s["real_set"]) if r in scored]  # in the table's order
    at_main = s[(s["scorer"] == "model") & (s["n_synthetic"] == main)]
    newest = max(at_main["version"].astype(str), key=lambda v: v.zfill(8), default=None)
    synthetic = validation_name(newest, main) if newest is not None else None
    order = list(dict.fromkeys(bands["label"]))
    auc = bands.set_index(["label", "set"])["auc"].unstack("set").reindex(order)  # a set ranking none: NaN
    columns: dict[str, pd.Series] = {}
    for real_set in real_sets:
        columns[f"{real_set}: rule"] = auc[real_set]
        if real_set not in best or labels is None or "auc" not in labels:
            continue
        mine = _model_rows(labels, real_set, best[real_set], main)
        columns[f"{real_set}: model v{best[real_set]}"] = mine.groupby("label")["auc"].mean().reindex(order)
    if synthetic in auc:
        columns[f"synth-ir17 v{newest} validation: rule"] = auc[synthetic]
    table = pd.DataFrame(columns, index=order, dtype=float)
    table = table[table.notna().any(axis=1)]
    if table.empty:
        return []
    ranges = bands.drop_duplicates("label").set_index("label")["bands_cm1"]
    lines = [
        "",
        "Do the real sets show each group where the correlation tables put it? A rule with no training "
        "scores each spectrum per label: on the spectrum scaled to a maximum of 1, its highest point in the "
        "ranges of the bands a chemist reads the group by (`sim2real.MARKERS`, from the band table the "
        "generator draws from; the least over the bands a label needs) above the spectrum's median. It has "
        "no specificity: where other groups of a set absorb in a label's ranges, it ranks that label poorly "
        "even where the band is there. Its ROC-AUC per label (at least "
        f"{MIN_CLASS} spectra with and {MIN_CLASS} without), beside the model's (the set's best generator at "
        "the default budget, mean over seeds); the last row is each column's mean over the labels it ranks "
        "(their number in brackets):",
        "",
        "| label | bands (cm-1) | " + " | ".join(table.columns) + " |",
        "|---|---|" + "---|" * len(table.columns),
    ]
    for label, r in table.iterrows():
        cells = [f"{v:.2f}" if np.isfinite(v) else "–" for v in r]
        lines.append(f"| {label} | {ranges[label]} | " + " | ".join(cells) + " |")
    means = [f"{c.mean():.2f} ({c.notna().sum()})" if c.notna().any() else "–" for _, c in table.items()]
    lines += ["| mean (labels) | | " + " | ".join(means) + " |", ""]
    for real_set in real_sets:
        rule = table[f"{real_set}: rule"].dropna()
        poor = rule[rule <= CHANCE_BAND]
        if len(poor):
            lines.append(
                f"- {real_set}: the rule ranks {len(poor)} of its {len(rule)} ranked labels at ROC-AUC "
                f"{CHANCE_BAND} or below ({', '.join(f'{n} {v:.2f}' for n, v in poor.items())}): in this set "
                "the height in those ranges does not tell the spectra with the group from those without "
                "(other groups absorb there too, or the group's band lies elsewhere)."
            )
    return lines


def machines(table: pd.DataFrame) -> str:
    """Where a store's models were trained, for the README (``on`` the machines; rows from before they were
    recorded: said so)."""
    names = _device_names(table)
    recorded = sorted(set(names) - {""})
    missing = int((names == "").sum())
    if not recorded:
        return "machine not recorded"
    text = "on " + ", ".join(recorded)
    return text + (f"; machine not recorded for {missing} of {len(names)} rows" if missing else "")


def _device_names(table: pd.DataFrame) -> pd.Series:
    """Per row, the machine its model trained on; "" where not recorded (a row or store made before)."""
    if "device_name" not in table:
        return pd.Series("", index=table.index)
    return table["device_name"].fillna("").astype(str)


def verdict(s: pd.DataFrame, predictions: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences from a `summary`: per real set, the best generator's micro-F1 against the majority
    baseline and, where several generators were scored, the last one's change over the first (and, from
    three on, over the one before it); with the `predictions` table, each with its 95% interval over the
    real set's spectra (`bootstrap_micro_f1`). All of this at the `main_size`; a generator trained on
    another number of spectra is set against its own version at the main size."""
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, part in s.groupby("real_set", sort=False):
        models = part[part["scorer"] == "model"]
        at_main = models[models["n_synthetic"] == main].set_index("version")
        model = at_main["micro_f1_mean"]
        majority = float(part.loc[part["scorer"] == "majority", "micro_f1_mean"].iloc[0])
        best, first, last = str(model.idxmax()), str(model.index[0]), str(model.index[-1])
        boot = bootstrap_micro_f1(predictions, real_set) if predictions is not None else None
        side = "above" if model[best] > majority else "below"
        text = (
            f"- {real_set}: best micro-F1 {model[best]:.3f} (synth-ir17 v{best}{_clause(boot, best)}), "
            f"{side} the majority baseline ({majority:.3f})"
        )
        if boot is not None:
            text += f" by {model[best] - majority:+.3f}{_clause(boot, best, 'majority')}"
        if len(model) > 1:
            text += (
                f"; v{last} against v{first}: {model[last] - model[first]:+.3f}{_clause(boot, last, first)}"
                f"{_machines_differ(at_main, last, first)}"
            )
        if len(model) > 2:  # the newest version's own step, beside the whole way from the first
            before = str(model.index[-2])
            text += (
                f"; v{last} against v{before}: {model[last] - model[before]:+.3f}"
                f"{_clause(boot, last, before)}{_machines_differ(at_main, last, before)}"
            )
        out.append(text + ".")
        out += [_budget_sentence(real_set, r, at_main, boot, main) for _, r in models.iterrows()
                if r["n_synthetic"] != main]  # fmt: skip
    if predictions is not None:
        out.append(
            f"- Intervals: 95% percentile bootstrap over the real set's spectra ({BOOT_DRAWS} resamples, "
            f"seed {BOOT_SEED}), the same resamples for every generator, seed and the baseline, so a "
            "difference is paired. They show how much a score depends on which molecules the set holds; "
            "the ± above is the spread over seeds. The best generator is picked on the same spectra, so its "
            "interval and its margin are a little optimistic."
        )
    return out


def ceiling_lines(s: pd.DataFrame) -> list[str]:
    """Per real set, from a `summary`: the highest threshold ceiling among the models at the main size, beside
    their micro-F1 at the synthetic thresholds and the best fixed label set's (the majority row's ceiling):
    how much thresholds could win at most, and what the scores know beyond the label shares."""
    if "ceiling_micro_f1_mean" not in s:
        return []
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, part in s.groupby("real_set", sort=False):
        models = part[(part["scorer"] == "model") & (part["n_synthetic"] == main)].dropna(
            subset=["ceiling_micro_f1_mean"]
        )
        fixed = part.loc[part["scorer"] == "majority", "ceiling_micro_f1_mean"].dropna()
        if models.empty:
            continue
        r = models.loc[models["ceiling_micro_f1_mean"].idxmax()]
        which = "the only generator" if len(models) == 1 else f"the highest of {len(models)} generators"
        text = (
            f"- {real_set}: thresholds fitted on its own labels would give the models at most "
            f"{r['ceiling_micro_f1_mean']:.3f} (synth-ir17 v{r['version']}, mean over seeds, against "
            f"{r['micro_f1_mean']:.3f} at its synthetic thresholds; {which} at n = {main} scored with it)"
        )
        if len(fixed):
            text += (
                f"; the best label set to name for every spectrum, chosen the same way, {fixed.iloc[0]:.3f}: "
                f"the scores add {r['ceiling_micro_f1_mean'] - fixed.iloc[0]:+.3f} to what the label shares "
                "alone allow"
            )
        out.append(text + ".")
    return out


def _budget_sentence(
    real_set: str, r: pd.Series, at_main: pd.DataFrame, boot: dict[str, np.ndarray] | None, main: int
) -> str:
    """A generator trained on another number of spectra (`r`, a `summary` row) against its own version
    at the main size (`at_main`: that size's model rows by version)."""
    key, version, size = (
        generator_key(r["version"], r["n_synthetic"], main),
        str(r["version"]),
        int(r["n_synthetic"]),
    )
    text = (
        f"- {real_set}: synth-ir17 v{key} ({size / main:g}x the spectra for the same model and epochs): "
        f"micro-F1 {r['micro_f1_mean']:.3f}"
    )
    if version in at_main.index:
        base = at_main.loc[version]
        text += (
            f", {r['micro_f1_mean'] - base['micro_f1_mean']:+.3f} against n = {main}"
            f"{_clause(boot, key, version)}"
        )
        if np.isfinite(r.get("mean_auc_mean", np.nan)) and np.isfinite(base.get("mean_auc_mean", np.nan)):
            text += f"; mean ROC-AUC {r['mean_auc_mean']:.3f} against {base['mean_auc_mean']:.3f}"
        ceilings = [x.get("ceiling_micro_f1_mean", np.nan) for x in (r, base)]
        if np.isfinite(ceilings).all():
            text += f"; ceiling {ceilings[0]:.3f} against {ceilings[1]:.3f}"
        if "machine" in r and r["machine"] != base["machine"]:
            text += f"; machines: n = {size} {r['machine']}, n = {main} {base['machine']}"
    return text + "."


def _machines_differ(at_main: pd.DataFrame, a: str, b: str) -> str:
    """A note for a comparison of versions `a` and `b` whose models trained on other machines (a `summary`'s
    model rows at the main size, by version): the difference then holds the machines' too."""
    if "machine" not in at_main or at_main.loc[a, "machine"] == at_main.loc[b, "machine"]:
        return ""
    return f" (machines: v{a} {at_main.loc[a, 'machine']}, v{b} {at_main.loc[b, 'machine']})"


def label_free_errors(predictions: pd.DataFrame) -> list[str]:
    """Per real set with spectra of molecules that carry none of the labels: how many labels each generator's
    models name on them (every one wrong), mean and range over seeds."""
    free = predictions[predictions["truth"] == ""]
    out = []
    for real_set, part in free.groupby("real_set", sort=False):
        named = pd.Series([len(labels) for labels in _sets(part["predicted"])], index=part.index)
        per_run = named.groupby([part["version"], part["n_synthetic"], part["seed"]], sort=False).sum()
        stats = per_run.groupby(level=[0, 1], sort=False).agg(["mean", "min", "max", "size"])
        main = main_size(part["n_synthetic"])
        listed = ", ".join(
            f"{r['mean']:.1f} ({r['min']:.0f}-{r['max']:.0f}) with v{generator_key(v, n, main)}"
            for (v, n), r in stats.iterrows()
        )
        out.append(
            f"- {real_set}: labels named on its {part['spectrum'].nunique()} spectra that carry none of the "
            f"groups (every one wrong), mean (range) over {int(stats['size'].max())} seeds: {listed}."
        )
    return out


def _clause(boot: dict[str, np.ndarray] | None, a: str, b: str | None = None) -> str:
    """The interval of `a`'s micro-F1 (or of `a` minus `b`) for a verdict sentence; "" without a bootstrap."""
    if boot is None:
        return ""
    return f"; {_interval(boot[a])}" if b is None else f" ({_interval(boot[a] - boot[b], difference=True)})"


def _interval(draws: np.ndarray, difference: bool = False) -> str:
    """``95% interval LO to HI``; for a `difference`, signed, and saying when it includes 0."""
    lo, hi = np.percentile(draws, [2.5, 97.5])
    if not difference:
        return f"95% interval {lo:.3f} to {hi:.3f}"
    return f"95% interval {lo:+.3f} to {hi:+.3f}" + (", which includes 0" if lo <= 0 <= hi else "")


def weak_labels(s: pd.DataFrame, labels: pd.DataFrame, min_support: int = 5, floor: float = 0.5) -> list[str]:
    """Per real set, the labels with at least `min_support` positives whose recall (mean over seeds) stays
    below `floor` with the best generator of `s` (a `summary`), from the per-label table."""
    out = []
    main = main_size(s["n_synthetic"])
    for real_set, best in best_at_main(s).items():
        rows = _model_rows(labels, real_set, best, main)
        head = f"- {real_set}, synth-ir17 v{best}: recall"
        if rows.empty:  # an older per-label table: say so rather than call every label fine
            out.append(f"{head} per label not in the per-label table.")
            continue
        # support: the set's positives, the same for every seed; recall: the mean over seeds
        if "auc" not in rows:  # a per-label table from before the ROC-AUC was scored
            rows = rows.assign(auc=np.nan)
        per = rows.groupby("label", sort=False).agg(
            recall=("recall", "mean"), support=("support", "max"), auc=("auc", "mean")
        )
        counted = per[per["support"] >= min_support]
        low = counted[counted["recall"] < floor].sort_values("recall")
        if low.empty:
            out.append(f"{head} >= {floor} on every label with at least {min_support} positives.")
            continue
        listed = ", ".join(
            f"{name} {r.recall:.2f} ({int(r.support)}"
            + (f"; ROC-AUC {r.auc:.2f})" if np.isfinite(r.auc) else ")")
            for name, r in low.iterrows()
        )
        out.append(
            f"{head} below {floor} on {len(low)} of the {len(counted)} labels with at least {min_support} "
            f"positives (recall, positives{'; ROC-AUC' if low['auc'].notna().any() else ''}): {listed}."
        )
    return out


def best_at_main(s: pd.DataFrame) -> dict[str, str]:
    """Per real set of a `summary`, the generator version whose models have the best mean micro-F1 at the
    `main_size`."""
    main = main_size(s["n_synthetic"])
    at_main = s[(s["scorer"] == "model") & (s["n_synthetic"] == main)]
    return {
        real_set: str(part.set_index("version")["micro_f1_mean"].idxmax())
        for real_set, part in at_main.groupby("real_set", sort=False)
    }


def _model_rows(labels: pd.DataFrame, real_set: str, version: str, size: int) -> pd.DataFrame:
    """The per-label rows of the models of one generator (version and synthetic set size) on a real set."""
    return labels[
        (labels["real_set"] == real_set) & (labels["scorer"] == "model")
        & (labels["version"].astype(str) == version) & (labels["n_synthetic"] == size)
    ]  # fmt: skip


def _cell(r: pd.Series, metric: str) -> str:
    sd = r[f"{metric}_std"]
    shown = r["scorer"] == "model" and r["seeds"] > 1 and np.isfinite(sd)  # baselines do not use the seed
    return f"{r[f'{metric}_mean']:.3f}" + (f" ± {sd:.3f}" if shown else "")
