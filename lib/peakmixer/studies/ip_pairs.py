"""The interpretable path judged pair by pair: intervals over test spectra, chance levels, channel ownership,
the arms compared on the same pairs, and the class-specific map against the others within each model.

Input: a scored study's valid rows and their detail tables (`store.read_details`): one row per (run, spectrum,
class, map) from `attribution.run_scores.score_pairs`, and each IP run's channels per class.

Intervals are 95% bootstrap intervals over test spectra (`spectrum_bootstrap`): the spectra are resampled,
with every pair of a drawn spectrum, in every seed at once (the seeds share the test split), so the interval
says how much the number would move with other test spectra. The spread over seeds is given beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from peakmixer.attribution.gradcam import GROUND_TRUTH_SCORES

N_BOOTSTRAP = 2000
# what each score is, and which way is better
SCORES = {
    "infidelity_share": "lower",  # scale-free: 1 - rho^2, the part of infidelity that measures the map
    "infidelity": "lower",  # captum's, the paper's column
    "sensitivity": "lower",
    **{name: "higher" for name in GROUND_TRUTH_SCORES},
}
MODE_ORDER = ("trainable", "frozen", "redrawn", "off")
# the verdict on the path: fidelity by the scale-free share (captum's infidelity also moves with the model),
# sensitivity, and the scores against the true bands
VERDICT_SCORES = ("infidelity_share", "sensitivity", *GROUND_TRUTH_SCORES)


def with_runs(pairs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """`pairs` with each run's dataset, IP mode and seed (from the results rows)."""
    if pairs.empty:
        return pairs
    keys = rows[["run_id", "dataset", "ip_mode", "seed"]].drop_duplicates("run_id")
    return pairs.merge(keys, on="run_id", how="inner")


def spectrum_draws(n_spectra: int, *, n: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(n, n_spectra): how often each test spectrum is drawn in each of `n` resamples with replacement (the
    one bootstrap draw of the pair-level and the Fig. 1 intervals)."""
    return np.random.default_rng(seed).multinomial(n_spectra, np.full(n_spectra, 1 / n_spectra), size=n)


def spectrum_bootstrap(
    values: np.ndarray, spectra: np.ndarray, *, n: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, 2.5 %, 97.5 %) of the mean of `values` when the test spectra are resampled with replacement,
    each drawn spectrum bringing all its values (its pairs in every seed); NaN values are left out."""
    values, spectra = np.asarray(values, float), np.asarray(spectra)
    keep = np.isfinite(values)
    values, spectra = values[keep], spectra[keep]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    ids, inverse = np.unique(spectra, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids)).astype(float)
    draws = spectrum_draws(len(ids), n=n, seed=seed)
    means = (draws @ sums) / np.maximum(draws @ counts, 1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def _resolved(lo: float, hi: float, better: str) -> str:
    """Which side an interval of (first − second) lies on: ``first``, ``second`` or ``neither``."""
    if not np.isfinite([lo, hi]).all() or lo <= 0 <= hi:
        return "neither"
    first_higher = lo > 0
    return "first" if first_higher == (better == "higher") else "second"


def _maps(pairs: pd.DataFrame, channels: str, rule: str) -> pd.DataFrame:
    return pairs[(pairs["channels"] == channels) & (pairs["rule"].fillna("") == rule)]


def fidelity_table(pairs: pd.DataFrame, rules: Sequence[str] = ("argmax", "topk")) -> pd.DataFrame:
    """Per dataset, IP mode and rule, the class-specific map's fidelity: captum's infidelity (mean, median),
    its scale-free share (mean, median, interval over spectra), ρ, E[Δf²], a random map's share, and
    sensitivity; with the pairs scored and left out (the class owns no channel, or a flat map)."""
    out = []
    for (dataset, mode), at in pairs.groupby(["dataset", "ip_mode"], sort=False):
        for rule in rules:
            m = _maps(at, "specific", rule)
            if m.empty:
                continue
            share = spectrum_bootstrap(m["infidelity_share"], m["spectrum"])
            sens = spectrum_bootstrap(m["sensitivity"], m["spectrum"])
            per_seed = m.groupby("seed")["infidelity_share"].mean()
            out.append(
                {
                    "dataset": dataset,
                    "ip_mode": mode,
                    "rule": rule,
                    "seeds": int(m["seed"].nunique()),
                    "pairs": len(m),
                    "left_out": int((~m["owned"].astype(bool) | m["flat"].astype(bool)).sum()),
                    "infidelity_mean": m["infidelity"].mean(),
                    "infidelity_median": m["infidelity"].median(),
                    "delta_f2_mean": m["delta_f2"].mean(),
                    "share_mean": share[0],
                    "share_ci_low": share[1],
                    "share_ci_high": share[2],
                    "share_median": m["infidelity_share"].median(),
                    "share_sd_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
                    "rho_mean": m["rho"].mean(),
                    "random_map_share_mean": m["infidelity_share_random"].mean(),
                    "sensitivity_mean": sens[0],
                    "sensitivity_ci_low": sens[1],
                    "sensitivity_ci_high": sens[2],
                    "sensitivity_median": m["sensitivity"].median(),
                }
            )
    return pd.DataFrame(out)


def chance_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every ground-truth score of every map against chance on the same pairs: the mask fraction (a uniform
    map's mass accuracy; a random ranking's expected rank accuracy and pointing game) and a random map.
    ``beats_chance`` needs the interval of (map − random map) and of (map − mask fraction) above 0."""
    out = []
    for (dataset, mode, channels, rule), m in pairs.groupby(
        ["dataset", "ip_mode", "channels", pairs["rule"].fillna("")], sort=False
    ):
        for name in GROUND_TRUTH_SCORES:
            if name not in m or m[name].isna().all():
                continue
            s = m[m[name].notna()]
            score = spectrum_bootstrap(s[name], s["spectrum"])
            over_random = spectrum_bootstrap(s[name] - s[f"{name}_random"], s["spectrum"])
            over_fraction = spectrum_bootstrap(s[name] - s["mask_fraction"], s["spectrum"])
            beats = over_random[1] > 0 and over_fraction[1] > 0
            below = over_random[2] < 0 and over_fraction[2] < 0
            out.append(
                {
                    "dataset": dataset,
                    "ip_mode": mode,
                    "channels": channels,
                    "rule": rule,
                    "score": name,
                    "pairs": len(s),
                    "map": score[0],
                    "map_ci_low": score[1],
                    "map_ci_high": score[2],
                    "mask_fraction": s["mask_fraction"].mean(),
                    "random_map": s[f"{name}_random"].mean(),
                    "over_random": over_random[0],
                    "over_random_ci_low": over_random[1],
                    "over_random_ci_high": over_random[2],
                    "beats_chance": bool(beats),
                    "against_chance": "above" if beats else ("below" if below else "at chance"),
                }
            )
    return pd.DataFrame(out)


def _matched(pairs: pd.DataFrame, a: str, b: str, rule: str, score: str) -> pd.DataFrame:
    """The class-specific maps of arms `a` and `b` on the pairs scored in both (same seed, spectrum and
    class), side by side."""
    keys = ["dataset", "seed", "spectrum", "class"]
    cols = (
        [*keys, score, "mask_fraction", f"{score}_random"] if score in GROUND_TRUTH_SCORES else [*keys, score]
    )
    left = _maps(pairs[pairs["ip_mode"] == a], "specific", rule)
    right = _maps(pairs[pairs["ip_mode"] == b], "specific", rule)
    left, right = left[left[score].notna()], right[right[score].notna()]
    return left[cols].merge(right[keys + [score]], on=keys, suffixes=("_a", "_b"))


def _beats_chance(values: pd.Series, both: pd.DataFrame, score: str) -> bool:
    """Whether a map's ground-truth score is above a random map's and the mask fraction on these pairs
    (the lower ends of both intervals over test spectra above 0), as in `chance_table`."""
    over = (values - both[f"{score}_random"], values - both["mask_fraction"])
    return all(spectrum_bootstrap(d, both["spectrum"])[1] > 0 for d in over)


def _arm_row(both: pd.DataFrame, score: str, a: str, b: str) -> dict:
    """One score of `compare_arms` on the matched pairs `both`."""
    diff = both[f"{score}_a"] - both[f"{score}_b"]
    mean, lo, hi = spectrum_bootstrap(diff, both["spectrum"])
    per_seed = diff.groupby(both["seed"]).mean()
    outcome = {"first": "supported", "second": "contradicted"}.get(
        _resolved(lo, hi, SCORES[score]), "not resolved"
    )
    why = ""
    if score in GROUND_TRUTH_SCORES and not _beats_chance(both[f"{score}_a"], both, score):
        why = f"{a}'s map does not beat chance (a random map and the mask fraction) on these pairs"
        outcome = "not resolved" if outcome == "supported" else outcome
    return {
        "score": score,
        "better": SCORES[score],
        "arm_a": a,
        "arm_b": b,
        "a": both[f"{score}_a"].mean(),
        "b": both[f"{score}_b"].mean(),
        "difference": mean,
        "ci_low": lo,
        "ci_high": hi,
        "sd_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
        "seeds": int(both["seed"].nunique()),
        "pairs_compared": len(both),
        "outcome": outcome,
        "reason": why,
    }


def compare_arms(
    pairs: pd.DataFrame,
    a: str = "trainable",
    b: str = "frozen",
    *,
    rules: Sequence[str] = ("argmax", "topk"),
    scores: Sequence[str] = tuple(SCORES),
) -> pd.DataFrame:
    """Arm `a` against arm `b` (IP modes), per dataset, rule and score, on the same pairs: those scored in
    both arms of one seed (pairs left out in either arm are counted, not hidden). The difference a − b has
    a 95% interval over test spectra and its spread over seeds. ``supported``: the interval favours `a`
    and, for a score against the true bands, `a`'s map beats chance on those pairs (above a random map and
    the mask fraction); ``contradicted``: the interval favours `b`; else ``not resolved``."""
    out = []
    for dataset, at in pairs.groupby("dataset", sort=False):
        for rule in rules:
            arms = {m: _maps(at[at["ip_mode"] == m], "specific", rule) for m in (a, b)}
            if any(x.empty for x in arms.values()):
                continue
            for score in scores:
                both = _matched(at, a, b, rule, score) if score in at and at[score].notna().any() else None
                if both is None or both.empty:
                    continue
                left_out = {
                    "left_out_a": int(arms[a][score].isna().sum()),
                    "left_out_b": int(arms[b][score].isna().sum()),
                }
                out.append({"dataset": dataset, "rule": rule} | _arm_row(both, score, a, b) | left_out)
    return pd.DataFrame(out)


def compare_with_others(
    pairs: pd.DataFrame, a: str = "trainable", others: Sequence[str] = ("frozen", "redrawn"), **options
) -> pd.DataFrame:
    """`compare_arms` of `a` against each of `others` that has pairs, in one table (empty when none has)."""
    frames = [
        compare_arms(pairs, a, b, **options) for b in others if not pairs.empty and b in set(pairs["ip_mode"])
    ]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def compare_subsets(
    pairs: pd.DataFrame, *, rules: Sequence[str] = ("argmax", "topk"), scores: Sequence[str] = tuple(SCORES)
) -> pd.DataFrame:
    """The paper's claim within each model: is Grad-CAM through the class's own channels clearer than through
    all channels, and than through the rest? Per dataset, IP mode, rule, score and other map, the paired
    difference (specific − other) on the pairs both maps scored, with its interval over test spectra;
    ``specific clearer`` where the interval favours the class-specific map, ``other clearer`` where it
    favours the other, else ``not resolved``."""
    keys = ["run_id", "pair"]
    out = []
    for (dataset, mode), at in pairs.groupby(["dataset", "ip_mode"], sort=False):
        for rule in rules:
            specific = _maps(at, "specific", rule)
            if specific.empty:
                continue
            others = {"all": _maps(at, "all", ""), "complement": _maps(at, "complement", rule)}
            for other, frame in others.items():
                for score in scores:
                    if score not in at or at[score].isna().all():
                        continue
                    both = specific[[*keys, "spectrum", "seed", score]].merge(
                        frame[[*keys, score]], on=keys, suffixes=("_s", "_o")
                    )
                    both = both.dropna(subset=[f"{score}_s", f"{score}_o"])
                    if both.empty:
                        continue
                    diff = both[f"{score}_s"] - both[f"{score}_o"]
                    mean, lo, hi = spectrum_bootstrap(diff, both["spectrum"])
                    per_seed = diff.groupby(both["seed"]).mean()
                    side = _resolved(lo, hi, SCORES[score])
                    out.append(
                        {
                            "dataset": dataset,
                            "ip_mode": mode,
                            "rule": rule,
                            "score": score,
                            "better": SCORES[score],
                            "versus": other,
                            "specific": both[f"{score}_s"].mean(),
                            "other": both[f"{score}_o"].mean(),
                            "difference": mean,
                            "ci_low": lo,
                            "ci_high": hi,
                            "pairs_compared": len(both),
                            "left_out": len(specific) - len(both),
                            "sd_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
                            "seeds": int(both["seed"].nunique()),
                            "outcome": {"first": "specific clearer", "second": "other clearer"}.get(
                                side, "not resolved"
                            ),
                        }
                    )
    return pd.DataFrame(out)


def ownership_table(channels: pd.DataFrame, pairs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per IP run: classes, channels, the classes the argmax rule leaves without a channel (named), the
    fewest / median / most channels a class owns, and the pairs each rule leaves out of the scores: the
    class owns no channel (``pairs_unowned_<rule>``) or its map is flat, zero everywhere
    (``pairs_flat_<rule>``); ``pairs_left_out_<rule>`` counts both, as the fidelity table does."""
    if channels.empty:
        return pd.DataFrame()
    out = []
    info = rows.set_index("run_id")
    for run_id, c in channels.groupby("run_id", sort=False):
        counts = c["channels_argmax"].to_numpy()
        name = "label" if "label" in c and c["label"].notna().all() else "class"
        entry = {
            "run_id": run_id,
            "dataset": info.loc[run_id, "dataset"],
            "ip_mode": info.loc[run_id, "ip_mode"],
            "seed": int(info.loc[run_id, "seed"]),
            "classes": len(c),
            "channels": int(counts.sum()),
            "without_channels_argmax": int((counts == 0).sum()),
            "classes_without": ", ".join(str(k) for k in c.loc[c["channels_argmax"] == 0, name]),
            "fewest": int(counts.min()),
            "median": float(np.median(counts)),
            "most": int(counts.max()),
            "channels_topk": int(c["channels_topk"].iloc[0]),
        }
        mine = (
            pairs[(pairs["run_id"] == run_id) & (pairs["channels"] == "specific")]
            if not pairs.empty
            else pairs
        )
        for rule in ("argmax", "topk"):
            m = mine[mine["rule"] == rule] if not mine.empty else mine
            unowned = ~m["owned"].astype(bool) if not m.empty else pd.Series(dtype=bool)
            flat = m["flat"].astype(bool) & ~unowned if not m.empty else pd.Series(dtype=bool)
            entry[f"pairs_unowned_{rule}"] = int(unowned.sum())
            entry[f"pairs_flat_{rule}"] = int(flat.sum())
            entry[f"pairs_left_out_{rule}"] = int(unowned.sum() + flat.sum())
        entry["pairs"] = int(mine["pair"].nunique()) if not mine.empty else 0
        out.append(entry)
    return pd.DataFrame(out)


# --- sentences ------------------------------------------------------------------------------------------


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:+.3g}, {hi:+.3g}]"


def _seeds(n: int, sd: float) -> str:
    """The spread over seeds, or that there is one seed (no spread to give)."""
    return f"sd over {n} seeds {sd:.3g}" if n > 1 else "one seed, no spread over seeds"


def fidelity_text(table: pd.DataFrame) -> list[str]:
    """One line per dataset, IP mode and rule of `fidelity_table`."""
    return [
        f"- {r.dataset}, {r.ip_mode}, {r.rule}: infidelity share (1 − ρ²) {r.share_mean:.3f} "
        f"[{r.share_ci_low:.3f}, {r.share_ci_high:.3f}] (median {r.share_median:.3f}; a random map "
        f"{r.random_map_share_mean:.3f}); ρ {r.rho_mean:+.3f}; captum's infidelity {r.infidelity_mean:.3g} "
        f"(median {r.infidelity_median:.3g}) of E[Δf²] {r.delta_f2_mean:.3g}; sensitivity "
        f"{r.sensitivity_mean:.3f} (median {r.sensitivity_median:.3f}); {r.left_out} of {r.pairs} pairs "
        f"left out; {r.seeds} {'seed' if r.seeds == 1 else 'seeds'}."
        for r in table.itertuples(index=False)
    ]


def arms_text(table: pd.DataFrame) -> list[str]:
    """One line per dataset, rule and score of `compare_arms`."""
    return [
        f"- {r.dataset}, {r.rule}, {r.score} ({r.better} is better): {r.arm_a} {r.a:.3g} vs {r.arm_b} "
        f"{r.b:.3g}, difference {r.difference:+.3g} {_ci(r.ci_low, r.ci_high)} over test spectra "
        f"({_seeds(r.seeds, r.sd_over_seeds)}) on {r.pairs_compared} pairs scored in both (left out: "
        f"{r.left_out_a} {r.arm_a}, {r.left_out_b} {r.arm_b}): **{r.outcome}**"
        + (f" ({r.reason})." if r.reason else ".")
        for r in table.itertuples(index=False)
    ]


def subsets_text(table: pd.DataFrame) -> list[str]:
    """One line per dataset, IP mode, rule, score and other map of `compare_subsets`."""
    return [
        f"- {r.dataset}, {r.ip_mode}, {r.rule}, {r.score}: specific {r.specific:.3g} vs {r.versus} "
        f"{r.other:.3g}, difference {r.difference:+.3g} {_ci(r.ci_low, r.ci_high)} over test spectra "
        f"({_seeds(r.seeds, r.sd_over_seeds)}) on {r.pairs_compared} pairs ({r.left_out} left out): "
        f"**{r.outcome}**."
        for r in table.itertuples(index=False)
    ]


def path_verdict_text(arms: pd.DataFrame, *, synthetic: Iterable[str] = ()) -> str:
    """The verdict on the interpretable path: the trainable matrix against each other arm on the pairs both
    scored (`compare_arms`, its `VERDICT_SCORES`), how it is judged, and a tally per other arm."""
    arms = arms[arms["score"].isin(VERDICT_SCORES)] if not arms.empty else arms
    if arms.empty:
        return "No trainable run and other arm scored on the same pairs: no verdict."
    synthetic = sorted(set(synthetic))
    lines = [f"On SYNTHETIC data ({', '.join(synthetic)})."] if synthetic else []
    lines.append(
        "Does the trainable correlation matrix beat the frozen (and the redrawn) one? Per dataset, rule and "
        "score, on the pairs both arms scored (same seed, spectrum and class; pairs left out in either arm "
        "counted): the paired difference with a 95% bootstrap interval over test spectra. Fidelity is "
        "judged by the scale-free share of infidelity (1 − ρ²), not captum's value, which also moves with "
        "the model; a score against the true bands is 'supported' only where the trainable map beats chance."
    )
    lines += [line.removeprefix("- ") for line in arms_text(arms)]
    return "\n".join(lines + verdict_tally(arms))


def verdict_tally(arms: pd.DataFrame) -> list[str]:
    """How many scores of `compare_arms` came out each way, per other arm."""
    if arms.empty:
        return []
    return [
        f"Tally against {other}: "
        + ", ".join(f"{k} {n}" for k, n in at["outcome"].value_counts().items())
        + f" (of {len(at)})."
        for other, at in arms.groupby("arm_b", sort=False)
    ]


def chance_text(table: pd.DataFrame) -> list[str]:
    """One line per dataset, IP mode, map and score of `chance_table`."""
    return [
        f"- {r.dataset}, {r.ip_mode}, {r.channels}{' ' + r.rule if r.rule else ''}, {r.score}: "
        f"{r.map:.3f} [{r.map_ci_low:.3f}, {r.map_ci_high:.3f}] against a mask fraction of "
        f"{r.mask_fraction:.3f} and a random map's {r.random_map:.3f}: **{r.against_chance}**."
        for r in table.itertuples(index=False)
    ]


__all__ = [
    "SCORES",
    "VERDICT_SCORES",
    "path_verdict_text",
    "verdict_tally",
    "arms_text",
    "chance_text",
    "fidelity_text",
    "subsets_text",
    "chance_table",
    "compare_arms",
    "compare_subsets",
    "compare_with_others",
    "fidelity_table",
    "ownership_table",
    "spectrum_bootstrap",
    "spectrum_draws",
    "with_runs",
]
