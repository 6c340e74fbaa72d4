from webr_dagster.webr.estimate import estimate_page
from webr_dagster.webr.sampling import plan_page


def test_calls_per_role_and_tokens_grow_with_text():
    text = "\n\n".join("A paragraph of some length about a subject. " * 8 for _ in range(6))
    plans = [plan_page(f"p{i}", text, seed=1) for i in range(60)]
    for plan in plans:
        estimate = estimate_page(plan, text, None, max_tokens=1024)
        assert estimate.calls == (3 if plan.role == "WI" else 4)
        assert estimate.prompt_tokens > len(plan.sampled_text) // 4
    short = estimate_page(plans[0], text[:200], 100, 1024)
    assert short.prompt_tokens < estimate_page(plans[0], text, None, 1024).prompt_tokens


def test_variants_estimate_only_the_calls_they_make():
    from webr_dagster.webr.variants import plan_variant

    text = "\n\n".join(f"Paragraph {i} about rivers and the towns along them." for i in range(6))
    pages = [f"page-{i}" for i in range(60)]

    def calls(variant):
        return sum(estimate_page(plan_variant(p, text, 42, variant=variant), text, None, 4096,
                                 variant=variant).calls for p in pages)

    default = calls("default")
    roles = [plan_variant(p, text, 42).role for p in pages]
    wr_pages = roles.count("WR")
    assert 0 < wr_pages < len(pages)
    assert default == len(pages) * 3 + wr_pages  # profile, request, response (+ WR refine)
    assert calls("wr-no-refine") == default - wr_pages
    assert calls("no-profile") == default - len(pages)
    assert calls("wi-only") == len(pages) * 3
