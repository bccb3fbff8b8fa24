"""Drift tests against SciPy, their false-positive rate and power, and the drift detector."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopml.errors import InvalidArgument, InvalidState
from loopml.monitoring.drift import (
    PSI,
    ChiSquareTest,
    DomainClassifierDrift,
    DriftDetector,
    DriftTest,
    JensenShannonDistance,
    KSTest,
    PCAReconstructionDrift,
    TestResult,
    WassersteinDistance,
    ZTest,
    adjust_p_values,
    default_test,
    detect_drift,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- each statistic equals SciPy's on fixed data ------------------------------------------------
@pytest.mark.parametrize(
    ("n", "m", "decimals"),
    [(300, 450, None), (200, 200, 1), (12_000, 15_000, None), (20_000, 11_000, 2)],
)
def test_ks_statistic_and_p_value_equal_scipy_ks_2samp(
    n: int, m: int, decimals: int | None
) -> None:
    a, b = rng(1).normal(size=n), rng(2).normal(0.05, 1.1, size=m)
    if decimals is not None:  # ties
        a, b = np.round(a, decimals), np.round(b, decimals)
    expected = stats.ks_2samp(a, b)
    result = KSTest().fit(a).score(b)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.drifted == (expected.pvalue < 0.05)


def test_chi_square_equals_scipy_chi2_contingency_with_unseen_values_pooled() -> None:
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"] * 5
    current = ["a"] * 40 + ["b"] * 35 + ["x"] * 6 + ["y"] * 4  # no "c" nor "d"; x, y are new
    table = np.array([[50, 30, 20, 5, 0], [40, 35, 0, 0, 10]])
    expected = stats.chi2_contingency(table, correction=False)
    result = ChiSquareTest().fit(pd.Series(reference)).score(pd.Series(current))
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.drifted


def test_z_test_p_value_is_the_two_sided_normal_tail_of_the_pooled_z() -> None:
    reference = np.array([1] * 130 + [0] * 170)
    current = np.array([1] * 95 + [0] * 105)
    p1, p2, pooled = 130 / 300, 95 / 200, 225 / 500
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 300 + 1 / 200))
    result = ZTest().fit(reference).score(current)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    # the pooled z-test is the 2 x 2 chi-square test: z squared is its statistic
    chi = stats.chi2_contingency([[130, 170], [95, 105]], correction=False)
    assert result.statistic**2 == pytest.approx(chi.statistic, rel=1e-10)


@pytest.mark.parametrize(("n", "m"), [(1000, 1000), (1000, 733), (5, 1_700), (40_000, 25_000)])
def test_wasserstein_equals_scipy_divided_by_reference_std(n: int, m: int) -> None:
    a = np.round(rng(3).gamma(2.0, 1.5, size=n), 1)
    b = np.round(rng(4).gamma(2.2, 1.5, size=m), 1)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    result = WassersteinDistance().fit(a).score(b)
    assert result.statistic == pytest.approx(expected, rel=1e-9)
    assert result.p_value is None
    assert result.drifted == (expected >= 0.1)


@pytest.mark.parametrize("base", [math.e, 2.0])
def test_jensen_shannon_on_categories_equals_scipy_with_empty_cells_filled(base: float) -> None:
    reference = pd.Series(["a"] * 60 + ["b"] * 40)
    current = pd.Series(["a"] * 10 + ["z"] * 10)  # no "b"; "z" is unseen
    # cells: a, b, unseen; zero shares become 1e-4
    p = np.array([0.6, 0.4, 1e-4])
    q = np.array([0.5, 1e-4, 0.5])
    result = JensenShannonDistance(base=base).fit(reference).score(current)
    assert result.statistic == pytest.approx(jensenshannon(p, q, base=base), rel=1e-12)
    assert result.drifted


def test_jensen_shannon_on_numbers_uses_equal_width_reference_bins() -> None:
    a, b = rng(5).normal(size=4000), rng(6).normal(0.3, 1.0, size=3000)
    edges = np.linspace(a.min(), a.max(), 21)
    inside = np.histogram(b, bins=edges)[0]
    below, above = int((b < edges[0]).sum()), int((b > edges[-1]).sum())
    p = np.concatenate([[0], np.histogram(a, bins=edges)[0], [0]]) / len(a)
    q = np.concatenate([[below], inside, [above]]) / len(b)
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    result = JensenShannonDistance().fit(a).score(b)
    assert result.statistic == pytest.approx(jensenshannon(p, q), rel=1e-12)


def test_psi_equals_a_hand_computation_and_sets_the_band() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pd.Series(["a"] * 25 + ["b"] * 30 + ["c"] * 45)
    # (q - p) ln(q / p) per cell; the unseen cell is 1e-4 on both sides and adds 0
    hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + 0 + (0.45 - 0.2) * math.log(0.45 / 0.2)
    result = PSI().fit(reference).score(current)
    assert result.statistic == pytest.approx(hand, rel=1e-12)
    assert hand >= 0.25 and result.level == "alert" and result.drifted
    mild = pd.Series(["a"] * 35 + ["b"] * 30 + ["c"] * 35)  # PSI 0.137
    assert PSI().fit(reference).score(mild).level == "warn"
    assert PSI().fit(reference).score(reference).level == "ok"


def test_psi_on_numbers_uses_reference_deciles_and_open_outer_cells() -> None:
    a = np.arange(1000, dtype=float)
    b = np.concatenate([np.arange(500, dtype=float), np.full(500, 5000.0)])  # half above max
    p = np.array([1e-4] + [0.1] * 10 + [1e-4])
    q = np.array([1e-4] + [0.1] * 5 + [1e-4] * 5 + [0.5])
    hand = float(np.sum((q - p) * np.log(q / p)))
    assert PSI().fit(a).score(b).statistic == pytest.approx(hand, rel=1e-9)


# -- false-positive rate and power on synthetic data --------------------------------------------
REPEATS, SIZE, ALPHA = 200, 500, 0.05
# two-sided 99.9 % binomial interval for the number of flags when nothing changed
LOW, HIGH = (int(v) for v in stats.binom.interval(0.999, REPEATS, ALPHA))


def flag_count(test: DriftTest, draw: Any, shift: bool, seed: int) -> int:
    generator = rng(seed)
    flags = 0
    for _ in range(REPEATS):
        reference, current = draw(generator, False), draw(generator, shift)
        flags += test.clone().fit(reference).score(current).drifted
    return flags


def normal(generator: np.random.Generator, shift: bool) -> Any:
    return generator.normal(0.5 if shift else 0.0, 1.0, SIZE)


def three_categories(generator: np.random.Generator, shift: bool) -> Any:
    p = [0.35, 0.3, 0.35] if shift else [0.5, 0.3, 0.2]
    return pd.Series(generator.choice(["a", "b", "c"], size=SIZE, p=p))


def coin(generator: np.random.Generator, shift: bool) -> Any:
    return pd.Series(generator.random(SIZE) < (0.62 if shift else 0.5))


@pytest.mark.parametrize(
    ("test", "draw"),
    [(KSTest(ALPHA), normal), (ChiSquareTest(ALPHA), three_categories), (ZTest(ALPHA), coin)],
    ids=["ks", "chisquare", "z"],
)
def test_p_value_tests_flag_alpha_of_unchanged_samples_and_nearly_all_shifted_ones(
    test: DriftTest, draw: Any
) -> None:
    unchanged = flag_count(test, draw, shift=False, seed=11)
    assert LOW <= unchanged <= HIGH, f"{unchanged} of {REPEATS} flagged, expected {LOW}-{HIGH}"
    assert flag_count(test, draw, shift=True, seed=12) > 0.95 * REPEATS


def test_distance_tests_ignore_sampling_noise_and_catch_a_half_sd_shift() -> None:
    generator = rng(13)
    reference = generator.normal(size=20_000)
    same, shifted = generator.normal(size=20_000), generator.normal(0.5, 1.0, size=20_000)
    wasserstein = WassersteinDistance().fit(reference)
    assert not wasserstein.score(same).drifted
    assert wasserstein.score(shifted).drifted
    jensen = JensenShannonDistance().fit(reference)
    assert not jensen.score(same).drifted
    assert jensen.score(shifted).drifted


# -- the default rule, corrections, the estimator contract --------------------------------------
@pytest.mark.parametrize(
    ("kind", "n", "distinct", "expected"),
    [
        ("numerical", 1000, 500, KSTest),
        ("numerical", 1001, 500, WassersteinDistance),
        ("numerical", 800, 5, ChiSquareTest),
        ("numerical", 800, 2, ZTest),
        ("numerical", 5000, 5, JensenShannonDistance),
        ("numerical", 5000, 6, WassersteinDistance),
        ("categorical", 1000, 7, ChiSquareTest),
        ("categorical", 1000, 1, ZTest),
        ("categorical", 1001, 7, JensenShannonDistance),
        ("binary", 1000, 2, ZTest),
        ("binary", 1001, 2, JensenShannonDistance),
    ],
)
def test_default_test_follows_the_evidently_rule(
    kind: str, n: int, distinct: int, expected: type[DriftTest]
) -> None:
    assert type(default_test(kind, n, distinct)) is expected


def test_default_test_refuses_text_columns_naming_the_kinds_it_knows() -> None:
    with pytest.raises(InvalidArgument, match=r"'text'.*'numerical', 'categorical' and 'binary'"):
        default_test("text", 100)


def test_p_value_corrections_match_their_definitions() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04, 0.5 times 5, 4, 3, 2, 1, then running maximum
    assert adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert adjust_p_values(p, "fdr_bh") == pytest.approx(
        stats.false_discovery_control(p, method="bh")
    )
    with pytest.raises(InvalidArgument, match="bonferroni, holm, fdr_bh"):
        adjust_p_values(p, "sidak")  # type: ignore[arg-type]


def test_tests_follow_the_scikit_learn_contract() -> None:
    test = JensenShannonDistance(threshold=0.2, bins=10)
    assert test.get_params() == {"threshold": 0.2, "base": math.e, "bins": 10}
    assert repr(test) == "JensenShannonDistance(threshold=0.2, base=2.718281828459045, bins=10)"
    with pytest.raises(InvalidState, match="call fit"):
        test.score([1.0, 2.0])
    assert test.fit(np.arange(100.0)) is test and hasattr(test, "cells_")
    assert not hasattr(test.clone(), "cells_")
    with pytest.raises(InvalidArgument, match="alpha must be between 0 and 1"):
        KSTest(alpha=1.5).fit([1.0, 2.0])


def test_numerical_test_on_strings_says_which_tests_fit() -> None:
    with pytest.raises(InvalidArgument, match=r"needs numerical values.*ChiSquareTest"):
        KSTest().fit(pd.Series(["a", "b"]))


def test_a_result_cannot_warn_without_drifting() -> None:
    assert TestResult("psi", 0.5, None, 0.1, True).level == "alert"
    with pytest.raises(InvalidArgument, match="needs drifted=True"):
        TestResult("psi", 0.5, None, 0.1, False, "warn")


# -- the detector -------------------------------------------------------------------------------
def frames(n: int = 3000, seed: int = 21) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = rng(seed)
    reference = pd.DataFrame(
        {
            "age": g.normal(40, 10, n),
            "income": g.lognormal(10, 0.5, n),
            "city": g.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            "member": g.random(n) < 0.3,
        }
    )
    current = pd.DataFrame(
        {
            "age": g.normal(45, 10, n),  # +0.5 sd
            "income": g.lognormal(10, 0.5, n),
            "city": g.choice(["paris", "lyon", "nice"], n, p=[0.2, 0.3, 0.5]),
            "member": g.random(n) < 0.3,
        }
    )
    return reference, current


def test_detector_flags_shifted_columns_and_dataset_drift_at_the_share() -> None:
    reference, current = frames()
    report = detect_drift(reference, current)
    assert report.drifted_columns == ["age", "city"]
    assert {c.method for c in report.columns.values()} == {"wasserstein", "jensenshannon"}
    assert report.share_drifted == 0.5 and report.dataset_drifted
    assert not detect_drift(reference, current, share=0.6).dataset_drifted
    assert report.warnings == ()


def test_small_references_get_p_value_tests() -> None:
    reference, current = frames(n=400)
    report = detect_drift(reference, current)
    methods = {name: c.method for name, c in report.columns.items()}
    assert methods == {"age": "ks", "income": "ks", "city": "chisquare", "member": "z"}
    assert report.columns["age"].drifted and not report.columns["income"].drifted


def test_one_fitted_detector_scores_many_windows_like_detect_drift() -> None:
    reference, current = frames()
    detector = DriftDetector().fit(reference)
    for window in (current.iloc[:1500], current.iloc[1500:], reference.iloc[:1000]):
        assert detector.score(window) == detect_drift(reference, window)
    assert not detector.score(reference.iloc[:1500]).dataset_drifted


def test_correction_adjusts_p_values_and_can_clear_a_borderline_column() -> None:
    g = rng(31)
    reference = pd.DataFrame({f"x{i}": g.normal(size=300) for i in range(10)})
    current = pd.DataFrame({f"x{i}": g.normal(size=300) for i in range(10)})
    current["x0"] += 0.4  # a weak shift: p about 0.02 on this data
    raw = detect_drift(reference, current)
    fixed = detect_drift(reference, current, correction="bonferroni")
    p_raw = [c.p_value for c in raw.columns.values()]
    assert [c.p_value for c in fixed.columns.values()] == pytest.approx(
        [min(1.0, p * 10) for p in p_raw if p is not None]
    )
    assert raw.columns["x0"].drifted and 0.005 < (raw.columns["x0"].p_value or 0) < 0.05
    assert not fixed.columns["x0"].drifted and fixed.correction == "bonferroni"


def test_prediction_column_is_reported_apart_and_not_counted() -> None:
    reference, current = frames()
    reference["score"] = reference["age"] / 100
    current["score"] = current["age"] / 100
    report = detect_drift(reference, current, prediction="score", columns=["income", "member"])
    assert list(report.columns) == ["income", "member"]
    assert report.prediction is not None and report.prediction.drifted
    assert report.share_drifted == 0.0 and not report.dataset_drifted


def test_missing_values_and_unseen_categories_are_reported_without_making_drift() -> None:
    reference, current = frames(seed=41)
    current = current.assign(income=reference["income"], member=reference["member"])
    current.loc[::3, "income"] = np.nan
    current["member"] = current["member"].astype(object)
    current.loc[current.index[:40], "member"] = None
    current.loc[current.index[:30], "city"] = "marseille"
    report = detect_drift(reference, current)
    income = report.columns["income"]
    assert not income.drifted and income.missing_rate_current == pytest.approx(1 / 3, abs=1e-3)
    assert income.n_current == 2000 and income.missing_rate_reference == 0.0
    assert report.columns["city"].unseen_categories == ("marseille",)
    member = report.columns["member"]  # booleans with None: object dtype, still booleans
    assert member.message == "" and member.missing_rate_current == pytest.approx(40 / 3000)


def test_bad_current_data_gives_messages_and_warnings_not_errors() -> None:
    reference, current = frames()
    reference["blank"] = np.nan
    broken = current.drop(columns=["income"]).assign(age="old", city=None, blank=1.0)
    report = detect_drift(reference, broken)
    messages = {name: c.message for name, c in report.columns.items()}
    assert messages["income"] == "missing from the current data"
    assert messages["age"].startswith("type changed: number (numerical) in the reference")
    assert messages["city"] == "no non-missing value in the current data"
    assert messages["blank"] == "no non-missing value in the reference: not tested"
    assert messages["member"] == ""
    assert not any(c.drifted for c in report.columns.values() if c.message)
    assert all(c.statistic is None for c in report.columns.values() if c.message)
    assert len(report.warnings) == 4 and "column 'income': missing" in "".join(report.warnings)
    assert report.share_drifted == 0.0  # only "member" was tested
    empty = detect_drift(reference, current.iloc[:0])
    assert empty.warnings[0] == "the current data has no rows: nothing was tested"
    assert not empty.dataset_drifted
    assert {c.message for c in empty.columns.values()} >= {"no rows in the current data"}


def test_text_columns_are_not_tested_unless_a_test_is_given() -> None:
    g = rng(51)
    notes = [f"free text note number {i} " * 3 for i in g.integers(0, 10**6, 2000)]
    reference = pd.DataFrame({"note": notes, "x": g.normal(size=2000)})
    report = detect_drift(reference, reference)
    assert report.columns["note"].kind == "text"
    assert "no default test" in report.columns["note"].message
    chosen = detect_drift(reference, reference, tests={"note": JensenShannonDistance()})
    assert chosen.columns["note"].method == "jensenshannon" and not chosen.columns["note"].message


def test_given_tests_are_copied_and_checked_against_the_column() -> None:
    reference, current = frames()
    mine = PSI()
    report = detect_drift(reference, current, tests={"income": mine, "city": mine})
    assert report.columns["income"].method == report.columns["city"].method == "psi"
    assert not hasattr(mine, "cells_")
    with pytest.raises(InvalidArgument, match="KSTest needs numbers but column 'city'"):
        DriftDetector(tests={"city": KSTest()}).fit(reference)
    with pytest.raises(InvalidArgument, match="'nope', which is not tested"):
        DriftDetector(tests={"nope": KSTest()}).fit(reference)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": ["age", "height"]}, "'height' not in the reference"),
        ({"share": 0.0}, r"share must be in \(0, 1\]"),
        ({"correction": "sidak"}, "bonferroni, holm, fdr_bh"),
        ({"multivariate": "umap"}, "domain_classifier, pca"),
        ({"prediction": "score"}, "'score' not in the reference"),
    ],
)
def test_fit_rejects_bad_options_naming_the_valid_ones(
    options: dict[str, Any], message: str
) -> None:
    reference, _ = frames(n=50)
    with pytest.raises(InvalidArgument, match=message):
        DriftDetector(**options).fit(reference)


def test_score_before_fit_is_an_invalid_state() -> None:
    with pytest.raises(InvalidState, match="call fit"):
        DriftDetector().score(pd.DataFrame({"a": [1.0]}))


def test_report_to_dict_is_json() -> None:
    reference, current = frames()
    current.loc[current.index[:5], "city"] = "oslo"
    data = json.loads(json.dumps(detect_drift(reference, current, prediction="age").to_dict()))
    assert data["columns"]["city"]["unseen_categories"] == ["oslo"]
    assert data["prediction"]["name"] == "age" and data["dataset_drifted"] is False
    assert set(data["columns"]["income"]) >= {"method", "statistic", "p_value", "level"}


def test_large_windows_score_the_same_on_several_threads() -> None:
    g = rng(61)
    reference = pd.DataFrame({f"x{i}": g.normal(size=60_000) for i in range(4)})
    current = pd.DataFrame({f"x{i}": g.normal(0.02 * i, 1.0, 60_000) for i in range(4)})
    report = detect_drift(reference, current)
    for name, column in report.columns.items():
        single = WassersteinDistance().fit(reference[name]).score(current[name])
        assert column.statistic == single.statistic


# -- multivariate tests -------------------------------------------------------------------------
def correlated(n: int, seed: int, rho: float) -> pd.DataFrame:
    g = rng(seed)
    x = g.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * g.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "z": g.normal(size=n)})


def test_multivariate_tests_catch_a_broken_correlation_that_marginals_miss() -> None:
    reference = correlated(4000, 71, rho=0.95)
    same, broken = correlated(4000, 72, rho=0.95), correlated(4000, 73, rho=0.0)
    assert not detect_drift(reference, broken).dataset_drifted  # marginals are unchanged
    for name in ("domain_classifier", "pca"):
        detector = DriftDetector(multivariate=name).fit(reference)  # type: ignore[arg-type]
        calm, alarm = detector.score(same).multivariate, detector.score(broken).multivariate
        assert calm is not None and alarm is not None
        assert not calm.drifted, (name, calm)
        assert alarm.drifted, (name, alarm)


def test_domain_classifier_auc_is_near_one_half_without_drift() -> None:
    reference, _ = frames()
    test = DomainClassifierDrift(max_rows=1500).fit(reference.iloc[:1500])
    result = test.score(reference.iloc[1500:])
    assert 0.4 < result.statistic < 0.6 and result.threshold == 0.65


def test_pca_test_refuses_a_reference_without_numbers() -> None:
    with pytest.raises(InvalidArgument, match="at least one numeric column"):
        PCAReconstructionDrift().fit(pd.DataFrame({"c": ["a", "b"] * 50}))


def test_multivariate_test_on_an_empty_window_is_a_warning() -> None:
    reference, current = frames(n=500)
    report = DriftDetector(multivariate="pca").fit(reference).score(current.iloc[:0])
    assert report.multivariate is None
    assert any("multivariate test 'pca' not run" in w for w in report.warnings)


def test_a_large_reference_is_sketched_and_the_distance_barely_moves() -> None:
    import numpy as np
    from scipy.stats import wasserstein_distance

    from loopml.monitoring.drift import WassersteinDistance

    rng = np.random.default_rng(3)
    reference = rng.gamma(2.0, 1.0, 300_000)
    current = rng.gamma(2.0, 1.1, 50_000)
    test = WassersteinDistance().fit(reference)
    assert len(test.reference_) == 10_000  # kept small
    exact = wasserstein_distance(reference, current) / reference.std()
    assert abs(test.score(current).statistic - exact) < 1e-3
