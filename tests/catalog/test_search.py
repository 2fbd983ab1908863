"""The search index: exact first, typo-tolerant, honest when unsure."""

from __future__ import annotations

from callboard.catalog.search import SearchIndex, SearchResult, normalize


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


# --- completion (a picker's typeahead) -----------------------------------------------------------


def _keys(result: SearchResult) -> list[str]:
    return [c.key for c in result.candidates]


def _typeahead_index() -> SearchIndex:
    idx = SearchIndex()
    for key, title in [
        ("component:default/pay", None),
        ("component:default/payments-gateway", None),
        ("component:default/payment-service", "Payment Service"),
        ("component:default/payroll", None),
        ("api:default/payments-api", None),
        ("component:default/billing-service", None),
        ("group:default/payments-team", "Money People"),
        ("component:default/legacy-pay-bridge", None),
        ("resource:default/payments-db", None),
    ]:
        idx.add(key, key.split("/", 1)[1], title)
    return idx


def test_complete_ranks_exact_then_starts_then_later_words() -> None:
    res = _typeahead_index().complete("pay", limit=20)
    assert _keys(res)[:8] == [
        "component:default/pay",  # the name itself
        "component:default/payroll",  # names starting with it: shorter first ...
        "resource:default/payments-db",
        "api:default/payments-api",
        "group:default/payments-team",
        "component:default/payment-service",
        "component:default/payments-gateway",
        "component:default/legacy-pay-bridge",  # a later word starting with it
    ]
    assert res.candidates[0].exact and not any(c.exact for c in res.candidates[1:])
    assert res.confident  # one name is exactly what was typed
    assert res.candidates[1].score == 100.0 * 3 / 7 and res.candidates[1].distance == 4  # "payroll": 4 not typed
    assert not _typeahead_index().complete("paym").confident  # still typing


def test_complete_finds_the_start_of_a_later_word_and_of_a_title() -> None:
    idx = _typeahead_index()
    # the same length, the same word: alphabetically
    assert _keys(idx.complete("serv"))[:2] == ["component:default/billing-service", "component:default/payment-service"]
    assert _keys(idx.complete("Payment-Serv"))[0] == "component:default/payment-service"  # case and separators
    assert _keys(idx.complete("money"))[0] == "group:default/payments-team"  # the title's start
    assert _keys(idx.complete("peop"))[0] == "group:default/payments-team"  # a later word of the title
    assert _keys(idx.complete("money people")) == ["group:default/payments-team"]  # the whole title: exact
    assert idx.complete("money people").candidates[0].exact


def test_complete_honours_kinds() -> None:
    idx = _typeahead_index()
    assert _keys(idx.complete("pay", kinds=["api"])) == ["api:default/payments-api"]
    assert set(_keys(idx.complete("pay", kinds=["API", "group"]))) == {"api:default/payments-api",
                                                                       "group:default/payments-team"}
    assert _keys(idx.complete("pay", kinds=["system"])) == []  # a kind nothing has


def test_complete_falls_back_to_fuzzy_on_a_typo_or_a_middle_piece() -> None:
    idx = _typeahead_index()
    for typo in ("paymnet-servce", "biling", "ayment-service"):  # typos, and a piece from inside a word
        assert idx.complete(typo) == idx.search(typo, limit=20), typo  # nothing starts so: the fuzzy answer
    assert _keys(idx.complete("paymnet-servce"))[0] == "component:default/payment-service"
    assert "component:default/billing-service" in _keys(idx.complete("biling"))
    assert _keys(idx.complete("ayment-service"))[0] == "component:default/payment-service"
    assert idx.complete("zzzzqqq").candidates == ()


def test_complete_lists_prefix_hits_alone_when_there_are_some() -> None:
    idx = SearchIndex()
    for name in ("checkout-api", "checkout-apu", "chekout-api", "fraud-detector"):
        idx.add(f"component:default/{name}", name)
    assert _keys(idx.complete("checkout-ap")) == ["component:default/checkout-api", "component:default/checkout-apu"]
    assert _keys(idx.complete("checkout-ap", limit=1)) == ["component:default/checkout-api"]
    assert "component:default/chekout-api" in _keys(idx.search("checkout-ap"))  # what the fuzzy search would add


def test_complete_keeps_refs_working() -> None:
    idx = _typeahead_index()
    res = idx.complete("component:default/payment-service")
    assert _keys(res) == ["component:default/payment-service"] and res.confident and res.candidates[0].exact
    assert _keys(idx.complete("default/payroll")) == ["component:default/payroll"]
    assert _keys(idx.complete("api:default/payments-api", kinds=["component"])) != ["api:default/payments-api"]


def test_complete_follows_adds_renames_and_removals() -> None:
    idx = _typeahead_index()
    assert "component:default/payroll" in _keys(idx.complete("payr"))
    idx.update([("component:default/payroll", "salaries", None), ("component:default/payrise", "payrise", None)],
               ["component:default/payments-gateway"])
    assert _keys(idx.complete("payr")) == ["component:default/payrise"]
    assert _keys(idx.complete("salar")) == ["component:default/payroll"]
    assert "component:default/payments-gateway" not in _keys(idx.complete("payments"))
    idx.add("component:default/payments-gateway", "payments-gateway")  # add alone: found at the next query
    assert "component:default/payments-gateway" in _keys(idx.complete("payments-g"))
    idx.remove("component:default/payrise")
    assert "component:default/payrise" not in _keys(idx.complete("payri"))


def _ranked_by_hand(rows: list[tuple[str, str]], query: str, kinds: set[str] | None, limit: int) -> list[str]:
    """What ``complete`` must list for ``query`` (some word starting with it), worked out the slow way."""
    q = normalize(query)
    hits: list[tuple[tuple[int, int, str, str], str]] = []
    for key, name in rows:
        text = normalize(name)
        if kinds is not None and key.split(":", 1)[0] not in kinds:
            continue
        starts = [i for i in range(len(text)) if (i == 0 or text[i - 1] == " ") and text.startswith(q, i)]
        if text == q:
            hits.append(((0, 0, "", ""), key))
        elif starts:
            hits.append(((1 if starts[0] == 0 else 2, len(text), text[starts[0]:], text), key))
    return [key for _, key in sorted(hits, key=lambda h: h[0])[:limit]]


def test_complete_ranks_long_runs_as_short_ones() -> None:
    """Runs longer than the Python scan (ranked with numpy) list what a scan by hand lists."""
    import random

    rng = random.Random(5)
    rows = []
    for i in range(2000):
        words = rng.sample(["pay", "payments", "paging", "service", "serval", "api", "team", "ledger", "led"], 3)
        kind = rng.choice(["component", "api", "group"])
        rows.append((f"{kind}:default/{'-'.join(words)}-{i}", f"{'-'.join(words)}-{i}"))
    idx = SearchIndex()
    idx.update([(key, name, None) for key, name in rows[:1800]], ())  # a load: sorted in one go
    for key, name in rows[1800:1820]:
        idx.add(key, name)  # a few: each placed by bisection at the next query
        assert idx.complete("pay").candidates
    for key, name in rows[1820:]:
        idx.add(key, name)  # many: sorted again in one go at the next query
    for query, kinds, limit in [("pa", None, 20), ("pay", {"api"}, 20), ("se", None, 7), ("led", {"group", "api"}, 50),
                                ("payments serv", None, 20), ("api", None, 30), ("ledger pay", {"component"}, 20)]:
        assert _keys(idx.complete(query, kinds=kinds, limit=limit)) == _ranked_by_hand(rows, query, kinds, limit), query
    removed = rows[::3]
    idx.update([], [key for key, _ in removed])
    rows = [r for r in rows if r not in removed]
    assert _keys(idx.complete("pay", limit=40)) == _ranked_by_hand(rows, "pay", None, 40)


def test_complete_after_compaction() -> None:
    idx = SearchIndex()
    for i in range(3000):
        idx.add(f"component:default/payments-service-{i:05d}", f"payments-service-{i:05d}")
    for i in range(2500):  # past the compaction threshold
        idx.update([(f"component:default/payments-service-{i:05d}", f"billing-worker-{i:05d}", None)], [])
    for i in range(1000, 2000):
        idx.remove(f"component:default/payments-service-{i:05d}")
    assert _keys(idx.complete("payments-service", limit=3)) == [f"component:default/payments-service-{i:05d}"
                                                                 for i in (2500, 2501, 2502)]
    assert _keys(idx.complete("billing-worker-0", limit=2)) == ["component:default/payments-service-00000",
                                                                 "component:default/payments-service-00001"]
    assert "component:default/payments-service-01500" not in _keys(idx.complete("billing-worker-01500"))  # removed
    assert _keys(idx.complete("worker-00999")) == ["component:default/payments-service-00999"]


def test_complete_with_long_titles() -> None:
    """Words starting past the 255th character are left to the fuzzy search; lengths are capped."""
    idx = SearchIndex()
    title = "alpha " + "filler " * 60 + "omega"
    idx.add("component:default/long", "long", title)
    idx.add("component:default/alphabet", "alphabet", None)
    assert _keys(idx.complete("alph")) == ["component:default/alphabet", "component:default/long"]
    assert "component:default/long" in _keys(idx.complete("filler"))  # the first few hundred characters' words
    assert idx.complete("omeg") == idx.search("omeg", limit=20)  # past them: the fuzzy search
    typed = normalize(title)[:300]
    (hit,) = idx.complete(typed).candidates
    assert hit.key == "component:default/long" and hit.score == 100.0 and hit.distance == 0


def test_complete_rejects_a_limit_below_one() -> None:
    import pytest

    with pytest.raises(ValueError, match="limit"):
        _typeahead_index().complete("pay", limit=0)
