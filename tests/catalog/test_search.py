"""The search index: exact first, typo-tolerant, honest when unsure."""

from __future__ import annotations

from callboard.catalog.search import SearchIndex, normalize


def _index() -> SearchIndex:
    idx = SearchIndex()
    for key, title in [
        ("component:default/payment-service", "Payment Service"),
        ("component:default/payments-gateway", None),
        ("component:default/checkout-api", "Checkout API"),
        ("component:default/fraud-detector", None),
        ("api:default/checkout-api", None),
        ("group:default/payments-team", "Payments"),
        ("user:default/guest", None),
        ("group:default/guest", None),
        ("component:other/payment-service", None),
    ]:
        idx.add(key, key.split("/", 1)[1], title)
    return idx


def test_normalize() -> None:
    assert normalize("Payment_Service") == normalize("payment-service") == normalize(" payment  service ")


def test_exact_ref_and_name() -> None:
    idx = _index()
    assert idx.search("component:default/checkout-api").match.key == "component:default/checkout-api"  # type: ignore[union-attr]
    assert idx.search("other/payment-service").match.key == "component:other/payment-service"  # type: ignore[union-attr]
    res = idx.search("checkout-api")
    assert not res.confident and {c.key for c in res.candidates} == {"component:default/checkout-api", "api:default/checkout-api"}
    assert idx.search("checkout-api", kinds=["api"]).match.key == "api:default/checkout-api"  # type: ignore[union-attr]


def test_typos_case_separators_and_titles() -> None:
    idx = SearchIndex()
    idx.add("component:default/payment-service", "payment-service", "Payment Service")
    idx.add("component:default/fraud-detector", "fraud-detector", None)
    idx.add("component:default/checkout-api", "checkout-api", None)
    for q in ("paymnet-servce", "PAYMENT_SERVICE", "payment service", "Payment Service", "pyment-service", "service payment"):
        assert idx.search(q).match.key == "component:default/payment-service", q  # type: ignore[union-attr]
    assert idx.search("fraud").match.key == "component:default/fraud-detector"  # type: ignore[union-attr]
    assert idx.search("chekout").match.key == "component:default/checkout-api"  # type: ignore[union-attr]


def test_ambiguous_is_not_guessed() -> None:
    idx = _index()
    res = idx.search("payment")
    assert not res.confident
    assert len(res.candidates) >= 2
    assert idx.search("guest").match is None
    assert idx.search("guest", kinds=["user"]).match.key == "user:default/guest"  # type: ignore[union-attr]


def test_nothing_matches() -> None:
    assert _index().search("zzzzqqq").candidates == ()


def test_updates_in_place() -> None:
    idx = _index()
    idx.remove("component:default/fraud-detector")
    assert idx.search("fraud-detector").match is None
    idx.update([("component:default/fraud-detector", "fraud-detector", "Fraud")], [])
    assert idx.search("frud detector").match.key == "component:default/fraud-detector"  # type: ignore[union-attr]


def test_many_similar_names_pick_the_one_typed() -> None:
    idx = SearchIndex()
    for i in range(3000):
        idx.add(f"component:default/payments-service-{i:05d}", f"payments-service-{i:05d}")
        idx.add(f"component:default/billing-worker-{i:05d}", f"billing-worker-{i:05d}")
    res = idx.search("paymnets-service-01234")
    assert res.match is not None and res.match.key == "component:default/payments-service-01234"
    assert idx.search("biling-worker-00042").match.key == "component:default/billing-worker-00042"  # type: ignore[union-attr]


def test_removals_are_cheap_and_compaction_keeps_answers() -> None:
    import time

    idx = SearchIndex()
    for i in range(20_000):
        idx.add(f"component:default/payments-service-{i:05d}", f"payments-service-{i:05d}")
    started = time.perf_counter()
    for i in range(6_000):  # past the compaction threshold
        idx.remove(f"component:default/payments-service-{i:05d}")
    assert time.perf_counter() - started < 5
    assert len(idx) == 14_000
    assert idx.search("payments-service-00042").match is None
    assert idx.search("paymnets-service-12345").match.key == "component:default/payments-service-12345"  # type: ignore[union-attr]


def test_candidates_only_when_like_the_query() -> None:
    """Not found means not found: a name sharing a few trigrams with the query is no candidate, but a
    typo, a start of a word, a name standing in the query or a word shared (not a kind word) is."""
    idx = _index()
    for key in ("user:default/mei.lin", "user:default/tom.becker", "component:default/storefront-web"):
        idx.add(key, key.split("/", 1)[1])
    for nothing in ("nothing-like-this-xyz", "kubernetes", "zzzz-qqqq-xxxx", "the nothing service", "zebra crossing", "tomato"):
        assert idx.search(nothing).candidates == (), (nothing, idx.search(nothing).candidates)
    assert idx.search("paymnets-gatewy").match.key == "component:default/payments-gateway"  # type: ignore[union-attr]
    assert {c.key for c in idx.search("pay").candidates} >= {"component:default/payment-service",
                                                              "component:default/payments-gateway"}
    assert [c.key for c in idx.search("is fraud-detector down").candidates] == ["component:default/fraud-detector"]
    assert "component:default/payments-gateway" in {c.key for c in idx.search("gatewya for payments").candidates}
    assert idx.search("service").candidates  # a kind word alone still lists what has it in its name
    assert "component:default/storefront-web" not in {c.key for c in idx.search("checkout web").candidates}
