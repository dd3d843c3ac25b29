"""The 19 math word-problem templates of data/math.jsonl (GSM8K's part in this project).

Each ``m_*`` function draws its numbers and words with ``rng`` from ``vocab`` (the
``"math"`` part of data/prompt_templates.json) and returns ``(question, answer,
solution)``: the integer answer is computed here, and every step ``a op b = c`` of the
short worked solution is checked by `eq`. They stay code, not data, because they compute.
`scripts/make_prompts.py` draws from `MATH_TEMPLATES` in this order (the order decides the
random draws).
"""

from __future__ import annotations

import random
import re

_EXPR = re.compile(r"^\d+(?: [-+*/] \d+)+$")


def eq(expr: str) -> tuple[int, str]:
    """Evaluate an arithmetic step like ``"3 * 4"``; return (value, ``"3 * 4 = 12"``)."""
    assert _EXPR.match(expr), expr
    value = eval(expr, {"__builtins__": {}}, {})  # digits and + - * / only (checked above)
    assert value == int(value) and value >= 0, (expr, value)
    return int(value), f"{expr} = {int(value)}"


def people(rng: random.Random, vocab: dict, k: int = 1) -> list[tuple[str, dict]]:
    """``k`` different people, each as (name, pronouns)."""
    names = list(vocab["names"].items())
    return [(name, vocab["pronouns"][g]) for name, g in rng.sample(names, k)]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def m_shopping(rng, vocab):
    shops = vocab["shopping"]["shops"]
    shop = rng.choice(sorted(shops))
    (i1, lo1, hi1), (i2, lo2, hi2) = rng.sample(shops[shop], 2)
    (n, p), = people(rng, vocab)
    a, b = rng.randint(2, 6), rng.randint(2, 6)
    p1, p2 = rng.randint(lo1, hi1), rng.randint(lo2, hi2)
    c1, s1 = eq(f"{a} * {p1}")
    c2, s2 = eq(f"{b} * {p2}")
    tot, s3 = eq(f"{c1} + {c2}")
    bill = next(x for x in (10, 20, 50, 100, 200) if x > tot)
    ans, s4 = eq(f"{bill} - {tot}")
    q = (f"At {shop}, {n} buys {a} {i1} for ${p1} each and {b} {i2} for ${p2} each. "
         f"{p['He']} pays with a ${bill} bill. How much change, in dollars, does {p['he']} get back?")
    sol = (f"The {i1} cost {s1} dollars and the {i2} cost {s2} dollars. Altogether {p['he']} "
           f"spends {s3} dollars, so the change is {s4} dollars.")
    return q, ans, sol


def m_parent_age(rng, vocab):
    (a, pa), (b, pb) = people(rng, vocab, 2)
    child = "son" if pb["he"] == "he" else "daughter"
    while True:
        k, kid = rng.randint(2, 5), rng.randint(4, 14)
        if 25 <= k * kid <= 55:
            break
    now = k * kid
    y = rng.randint(2, 12)
    later = now + y
    v1, s1 = eq(f"{later} - {y}")
    v2, s2 = eq(f"{v1} / {k}")
    times = vocab["times"][k]
    q = (f"{a} is {times} as old as {pa['his']} {child} {b}. In {y} years, {a} will be "
         f"{later} years old. How old is {b} now?")
    sol = f"Right now {a} is {s1} years old. So {b} is {s2} years old."
    return q, v2, sol


def m_sibling_ages(rng, vocab):
    (a, _), (b, _) = people(rng, vocab, 2)
    d, young, y = rng.randint(2, 9), rng.randint(5, 30), rng.randint(3, 10)
    s = 2 * young + d
    v1, s1 = eq(f"{s} - {d}")
    v2, s2 = eq(f"{v1} / 2")
    v3, s3 = eq(f"{v2} + {d}")
    v4, s4 = eq(f"{v3} + {y}")
    q = (f"{a} is {d} years older than {b}. Their ages add up to {s}. "
         f"How old will {a} be in {y} years?")
    sol = (f"Taking away the difference leaves {s1}, which is twice {b}'s age. So {b} is {s2} "
           f"and {a} is {s3}. In {y} years {a} will be {s4} years old.")
    return q, v4, sol


def m_journey(rng, vocab):
    who, lo, hi, step = rng.choice(vocab["journey"]["vehicles"])
    v1 = rng.randrange(lo + step, hi + 1, step)
    v2 = rng.randrange(lo, v1, step)
    h1, h2 = rng.randint(1, 4), rng.randint(1, 3)
    d1, s1 = eq(f"{v1} * {h1}")
    d2, s2 = eq(f"{v2} * {h2}")
    tot, s3 = eq(f"{d1} + {d2}")
    q = (f"{who} travels at {v1} km per hour for {plural(h1, 'hour')}, then slows to {v2} km "
         f"per hour for {plural(h2, 'hour')}.")
    sol = f"The first part covers {s1} km and the second part {s2} km, {s3} km in all."
    if rng.random() < 0.5:
        return q + " How many kilometres does it travel in total?", tot, sol
    whole = tot + rng.randrange(10, 160, 10)
    left, s4 = eq(f"{whole} - {tot}")
    q += f" The whole journey is {whole} km. How many kilometres are still left to travel?"
    return q, left, sol + f" That leaves {s4} km to go."


def m_work_rate(rng, vocab):
    verb, noun, lo, hi = rng.choice(vocab["work_rate"]["jobs"])
    (n, p), = people(rng, vocab)
    r, h, done = rng.randint(lo, hi), rng.randint(2, 8), rng.randint(3, 60)
    total = done + r * h
    rem, s1 = eq(f"{total} - {done}")
    hrs, s2 = eq(f"{rem} / {r}")
    q = (f"{n} can {verb} {r} {noun} an hour. {p['He']} has to {verb} {total} {noun} and has "
         f"already done {done}. How many more hours will it take {p['him']} to finish?")
    sol = (f"{p['He']} still has {s1} {noun} to {verb}. At {r} an hour that takes "
           f"{s2} hours.")
    return q, hrs, sol


def m_sharing(rng, vocab):
    (n, p), = people(rng, vocab)
    item = rng.choice(vocab["sharing"]["items"])
    k, g, f, e = rng.randint(2, 6), rng.randint(2, 8), rng.randint(3, 8), rng.randint(2, 6)
    total = k + g + f * e
    v1, s1 = eq(f"{k} + {g}")
    v2, s2 = eq(f"{total} - {v1}")
    v3, s3 = eq(f"{v2} / {f}")
    q = (f"{n} made {total} {item}. {p['He']} kept {k} for {p['self']}, gave {g} to "
         f"{p['his']} neighbour, and shared the rest equally among {f} friends. "
         f"How many {item} did each friend get?")
    sol = (f"{p['He']} kept or gave away {s1} {item}, which leaves {s2}. "
           f"Each friend gets {s3}.")
    return q, v3, sol


def m_practice(rng, vocab):
    act, ger = rng.choice(vocab["practice"]["activities"])
    (n, p), = people(rng, vocab)
    while True:
        a = rng.choice([10, 15, 20, 25, 30, 40, 45, 50, 60])
        b = rng.choice([15, 20, 30, 40, 45, 60, 75, 90])
        w = rng.randint(2, 6)
        if w * (5 * a + 2 * b) % 60 == 0:
            break
    v1, s1 = eq(f"5 * {a}")
    v2, s2 = eq(f"2 * {b}")
    v3, s3 = eq(f"{v1} + {v2}")
    v4, s4 = eq(f"{v3} * {w}")
    v5, s5 = eq(f"{v4} / 60")
    q = (f"{n} {act} for {a} minutes on each weekday and {b} minutes on each day of the "
         f"weekend. How many hours does {p['he']} spend {ger} in {w} weeks?")
    sol = (f"Weekdays take {s1} minutes and the weekend {s2} minutes, so a week is {s3} "
           f"minutes. In {w} weeks that is {s4} minutes, which is {s5} hours.")
    return q, v5, sol


def m_fractions(rng, vocab):
    fr = vocab["fractions"]
    head, g1, g2, tail = rng.choice(fr["contexts"])
    a1, d1, w1 = rng.choice(fr["first"])
    a2, d2, w2 = rng.choice(fr["second"])
    n = d1 * d2 * rng.randint(max(1, 20 // (d1 * d2)), 600 // (d1 * d2))
    v1, s1 = eq(f"{n} * {a1} / {d1}")
    v2, s2 = eq(f"{n} - {v1}")
    v3, s3 = eq(f"{v2} * {a2} / {d2}")
    v4, s4 = eq(f"{v2} - {v3}")
    q = f"{head.format(n=n)} {w1} of them {g1}, and {w2} of the rest {g2}. {tail}"
    sol = (f"{w1} of {n} is {s1}, leaving {s2}. {w2.capitalize()} of those is {s3}. "
           f"So {s4} remain.")
    return q, v4, sol


def m_discount(rng, vocab):
    item = rng.choice(vocab["discount"]["items"])
    (n, p), = people(rng, vocab)
    price, pct = 20 * rng.randint(2, 12), rng.choice([10, 15, 20, 25, 30, 40, 50])
    disc, s1 = eq(f"{price} * {pct} / 100")
    sale, s2 = eq(f"{price} - {disc}")
    coupon = rng.randint(3, min(15, sale - 1))
    pay, s3 = eq(f"{sale} - {coupon}")
    q = (f"A {item} normally costs ${price}. This week it is {pct}% off, and {n} also has a "
         f"coupon for ${coupon} off the sale price. How much does {n} pay for the {item}, "
         f"in dollars?")
    sol = (f"The discount is {s1} dollars, so the sale price is {s2} dollars. "
           f"After the coupon {p['he']} pays {s3} dollars.")
    return q, pay, sol


def m_wages(rng, vocab):
    job = rng.choice(vocab["wages"]["jobs"])
    spend = rng.choice(vocab["wages"]["spending"])
    (n, p), = people(rng, vocab)
    w, h, k = rng.randint(12, 25), rng.randint(8, 30), rng.randint(2, 8)
    pay, s1 = eq(f"{w} * {h}")
    s = 5 * rng.randint(2, max(2, pay // 10))  # spends at most about half of the pay
    sv, s2 = eq(f"{pay} - {s}")
    tot, s3 = eq(f"{sv} * {k}")
    q = (f"{n} works {job}, earning ${w} an hour for {h} hours each week. Every week "
         f"{p['he']} spends ${s} {spend} and saves the rest. How much does {p['he']} save in "
         f"{k} weeks, in dollars?")
    sol = (f"Each week {p['he']} earns {s1} dollars and saves {s2} dollars. "
           f"In {k} weeks {p['he']} saves {s3} dollars.")
    return q, tot, sol


def m_garden(rng, vocab):
    plant = rng.choice(vocab["garden"]["plants"])
    (n, p), = people(rng, vocab)
    r, c, m = rng.randint(3, 12), rng.randint(5, 20), rng.randint(1, 5)
    v1, s1 = eq(f"{r} * {c}")
    k = rng.randint(2, v1 // 4)
    v2, s2 = eq(f"{v1} - {k}")
    v3, s3 = eq(f"{m} * {c}")
    v4, s4 = eq(f"{v2} + {v3}")
    rows = "one more row" if m == 1 else f"{m} more rows"
    q = (f"{n} plants {r} rows of {plant} with {c} in each row. A frost kills {k} of them, so "
         f"{p['he']} plants {rows} of {c}. How many {plant} does {p['he']} have now?")
    sol = (f"{p['He']} starts with {s1} {plant}. After the frost {s2} are left. The new rows "
           f"add {s3}, for a total of {s4}.")
    return q, v4, sol


def m_savings_goal(rng, vocab):
    item, lo, hi = rng.choice(vocab["savings_goal"]["items"])
    (n, p), = people(rng, vocab)
    while True:
        s, g = 5 * rng.randint(2, 30), 5 * rng.randint(2, 10)
        w, t = 5 * rng.randint(1, 8), rng.randint(2, 15)
        cost = s + g + w * t
        if lo <= cost <= hi:
            break
    have, s1 = eq(f"{s} + {g}")
    need, s2 = eq(f"{cost} - {have}")
    weeks, s3 = eq(f"{need} / {w}")
    q = (f"{n} wants to buy a {item} that costs ${cost}. {p['He']} has saved ${s} and gets "
         f"${g} for {p['his']} birthday. If {p['he']} saves ${w} every week after that, how "
         f"many weeks will it take {p['him']} to have enough money?")
    sol = (f"{p['He']} has {s1} dollars, so {p['he']} still needs {s2} dollars. "
           f"At {w} dollars a week that takes {s3} weeks.")
    return q, weeks, sol


def m_recipe(rng, vocab):
    ing, prod = rng.choice(vocab["recipe"]["recipes"])
    (n, p), = people(rng, vocab)
    a, b, m = rng.randint(2, 5), rng.choice([6, 8, 10, 12, 15, 20, 24]), rng.randint(2, 5)
    c, have = b * m, a * m + rng.randint(1, 10)
    v1, s1 = eq(f"{c} / {b}")
    v2, s2 = eq(f"{a} * {v1}")
    v3, s3 = eq(f"{have} - {v2}")
    q = (f"A recipe uses {a} {ing} to make {b} {prod}. {n} wants to make {c} {prod} and has "
         f"{have} {ing}. How many {ing} will {p['he']} have left over?")
    sol = (f"{c} {prod} is {s1} batches. That needs {s2} {ing}, so {p['he']} has {s3} left.")
    return q, v3, sol


def m_collections(rng, vocab):
    obj = rng.choice(vocab["collections"]["objects"])
    (a, _), (b, _), (c, _) = people(rng, vocab, 3)
    nb, k = rng.randint(4, 30), rng.randint(2, 4)
    na, s1 = eq(f"{nb} * {k}")
    d = rng.randint(1, na - 1)
    nc, s2 = eq(f"{na} - {d}")
    tot, s3 = eq(f"{nb} + {na} + {nc}")
    times = vocab["times"][k]
    q = (f"{b} has {nb} {obj}. {a} has {times} as many {obj} as {b}, and {c} has {d} fewer "
         f"than {a}. How many {obj} do the three of them have altogether?")
    sol = f"{a} has {s1} {obj} and {c} has {s2}. Together they have {s3} {obj}."
    return q, tot, sol


def m_pages(rng, vocab):
    (n, p), = people(rng, vocab)
    while True:
        pages, a, k, c = 10 * rng.randint(12, 48), rng.randint(10, 40), rng.randint(2, 3), \
            rng.randint(5, 40)
        if pages - a - k * a - c > 0:
            break
    v1, s1 = eq(f"{a} * {k}")
    v2, s2 = eq(f"{a} + {v1} + {c}")
    v3, s3 = eq(f"{pages} - {v2}")
    times = vocab["times"][k]
    q = (f"{n} is reading a {pages}-page book. {p['He']} reads {a} pages on Monday, "
         f"{times} as many on Tuesday, and {c} pages on Wednesday. How many pages does "
         f"{p['he']} still have to read?")
    sol = (f"On Tuesday {p['he']} reads {s1} pages. Over the three days {p['he']} reads {s2} "
           f"pages, so {s3} pages are left.")
    return q, v3, sol


def m_fuel(rng, vocab):
    (n, p), = people(rng, vocab)
    d, litres, price = 50 * rng.randint(1, 12), rng.randint(5, 12), rng.randint(1, 3)
    v1, s1 = eq(f"2 * {d}")
    v2, s2 = eq(f"{v1} / 100")
    v3, s3 = eq(f"{v2} * {litres}")
    v4, s4 = eq(f"{v3} * {price}")
    q = (f"{n} drives to a town {d} km away and back again. {p['His']} car uses {litres} litres "
         f"of fuel for every 100 km, and fuel costs ${price} per litre. How much does the fuel "
         f"for the round trip cost, in dollars?")
    sol = (f"The round trip is {s1} km, which is {s2} lots of 100 km. The car uses {s3} "
           f"litres, costing {s4} dollars.")
    return q, v4, sol


def m_tickets(rng, vocab):
    venue = rng.choice(vocab["tickets"]["venues"])
    extra = rng.choice(vocab["tickets"]["extras"])
    (n, p), = people(rng, vocab)
    adult = rng.randint(8, 25)
    child = rng.randint(3, adult - 2)
    x, y, s = rng.randint(1, 4), rng.randint(1, 5), rng.randint(5, 20)
    v1, s1 = eq(f"{x} * {adult}")
    v2, s2 = eq(f"{y} * {child}")
    v3, s3 = eq(f"{v1} + {v2} + {s}")
    adults = "1 adult" if x == 1 else f"{x} adults"
    kids = "1 child" if y == 1 else f"{y} children"
    q = (f"At {venue}, adult tickets cost ${adult} and child tickets cost ${child}. {n} buys "
         f"tickets for {adults} and {kids}, and the group spends another ${s} on {extra}. "
         f"How much do they spend in total, in dollars?")
    sol = (f"Adult tickets cost {s1} dollars and child tickets {s2} dollars. "
           f"In total they spend {s3} dollars.")
    return q, v3, sol


def m_growth(rng, vocab):
    text, lo, hi = rng.choice(vocab["growth"]["contexts"])
    base, r = 20 * rng.randint(lo, hi), 5 * rng.randint(1, 10)
    g, s1 = eq(f"{base} * {r} / 100")
    total, s2 = eq(f"{base} + {g}")
    k = rng.randint(1, max(1, total // 10))
    final, s3 = eq(f"{total} - {k}")
    q = text.format(p=base, r=r, k=k)
    sol = f"The increase is {s1}, which gives {s2}. Taking away {k} leaves {s3}."
    return q, final, sol


def m_split_bill(rng, vocab):
    meal = rng.choice(vocab["split_bill"]["meals"])
    people_n, each, tip = rng.randint(2, 8), rng.randint(10, 60), rng.randint(5, 30)
    bill = people_n * each - tip
    if bill <= tip:
        bill += people_n * 10
    v1, s1 = eq(f"{bill} + {tip}")
    v2, s2 = eq(f"{v1} / {people_n}")
    count = vocab["count_words"][people_n]
    q = (f"{count} friends go out for {meal}. The bill comes to ${bill}, and they add a "
         f"${tip} tip. If they split the total equally, how much does each friend pay, "
         f"in dollars?")
    sol = f"The total is {s1} dollars, so each friend pays {s2} dollars."
    return q, v2, sol


MATH_TEMPLATES = [m_shopping, m_parent_age, m_sibling_ages, m_journey, m_work_rate, m_sharing,
                  m_practice, m_fractions, m_discount, m_wages, m_garden, m_savings_goal,
                  m_recipe, m_collections, m_pages, m_fuel, m_tickets, m_growth, m_split_bill]
