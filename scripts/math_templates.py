"""The 44 math word-problem templates of data/math.jsonl (GSM8K's part in this project).

Each ``m_*`` function draws its numbers and words with ``rng`` from ``vocab`` (the
``"math"`` part of data/prompt_templates.json) and returns ``(question, answer,
solution)``: the integer answer is computed here, and every step ``a op b = c`` of the
short worked solution is checked by `eq`. They stay code, not data, because they compute.
`scripts/make_prompts.py` draws from `MATH_TEMPLATES` in this order (the order decides the
random draws). The templates named in `UNSEEN_TEMPLATES` make the "unseen" split: problems
of templates that the draft never trains on.
"""

from __future__ import annotations

import random
import re
from math import gcd

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





# --------------------------------------------------------------------------------------
# More kinds of reasoning: rates and units, percentages and interest, ratios, averages,
# comparisons, money and change, clocks, area and perimeter, remainders, working
# backwards, combined work, speed, distance and time, and multiplication of items.
# --------------------------------------------------------------------------------------

def m_cut_pieces(rng, vocab):
    material, use = rng.choice(vocab["cut_pieces"]["materials"])
    (n, p), = people(rng, vocab)
    while True:
        metres, cm = rng.randint(2, 12), rng.choice([10, 20, 25, 30, 40, 50, 75])
        if metres * 100 % cm == 0:
            break
    v1, s1 = eq(f"{metres} * 100")
    v2, s2 = eq(f"{v1} / {cm}")
    used = rng.randint(1, v2 - 1)
    v3, s3 = eq(f"{v2} - {used}")
    q = (f"{n} has a {metres}-metre {material}. {p['He']} cuts all of it into pieces {cm} cm "
         f"long and uses {used} of the pieces {use}. How many pieces are left?")
    sol = (f"The {material} is {s1} cm long, which makes {s2} pieces. "
           f"After using {used}, {s3} pieces are left.")
    return q, v3, sol


def m_interest(rng, vocab):
    account, short = rng.choice(vocab["interest"]["accounts"])
    (n, p), = people(rng, vocab)
    principal, r, y = 100 * rng.randint(2, 50), rng.randint(2, 9), rng.randint(2, 6)
    v1, s1 = eq(f"{principal} * {r} / 100")
    v2, s2 = eq(f"{v1} * {y}")
    v3, s3 = eq(f"{principal} + {v2}")
    q = (f"{n} puts ${principal} into {account} that pays {r}% simple interest each year. "
         f"{p['He']} adds and takes out nothing. How much will {short} be worth after "
         f"{y} years, in dollars?")
    sol = (f"Each year the interest is {s1} dollars. Over {y} years that is {s2} dollars, "
           f"so there will be {s3} dollars.")
    return q, v3, sol


def m_quiz(rng, vocab):
    subject = rng.choice(vocab["quiz"]["subjects"])
    (n, p), = people(rng, vocab)
    while True:
        count, pct, pts = rng.choice([10, 20, 25, 40, 50]), 5 * rng.randint(10, 19), \
            rng.randint(2, 5)
        if count * pct % 100 == 0:
            break
    v1, s1 = eq(f"{count} * {pct} / 100")
    v2, s2 = eq(f"{count} - {v1}")
    v3, s3 = eq(f"{v2} * {pts}")
    q = (f"A {subject} quiz has {count} questions, each worth {pts} points. {n} answers "
         f"{pct}% of the questions correctly. How many points short of a perfect score is "
         f"{p['he']}?")
    sol = (f"{p['He']} gets {s1} questions right and {s2} wrong. "
           f"Each wrong answer costs {pts} points, so {p['he']} is {s3} points short.")
    return q, v3, sol


def m_ratio(rng, vocab):
    head, a, b = rng.choice(vocab["ratio"]["groups"])
    while True:
        x, y = rng.randint(1, 7), rng.randint(2, 9)
        if x != y and gcd(x, y) == 1:
            break
    part = rng.randint(2, 15)
    total = (x + y) * part
    v1, s1 = eq(f"{x} + {y}")
    v2, s2 = eq(f"{total} / {v1}")
    v3, s3 = eq(f"{y} * {v2}")
    q = f"{head.format(t=total)} The ratio of {a} to {b} is {x} to {y}. How many {b} are there?"
    sol = (f"The ratio has {s1} parts. Each part is {s2}, "
           f"so there are {s3} {b}.")
    return q, v3, sol


def m_unit_rate(rng, vocab):
    machine, verb, base, noun = rng.choice(vocab["unit_rate"]["machines"])
    per_min, t, h = rng.randint(2, 15), rng.choice([2, 3, 4, 5, 6, 10]), rng.randint(1, 4)
    made = per_min * t
    v1, s1 = eq(f"{made} / {t}")
    v2, s2 = eq(f"{h} * 60")
    v3, s3 = eq(f"{v1} * {v2}")
    q = (f"{machine} {verb} {made} {noun} in {t} minutes. Working at the same rate, how many "
         f"{noun} does it {base} in {plural(h, 'hour')}?")
    sol = (f"It {verb} {s1} {noun} a minute. {plural(h, 'hour').capitalize()} is {s2} "
           f"minutes, so it {verb} {s3} {noun}.")
    return q, v3, sol


def m_average_needed(rng, vocab):
    tests = rng.choice(vocab["average_needed"]["tests"])
    (n, p), = people(rng, vocab)
    while True:
        scores = [rng.randint(60, 98) for _ in range(3)]
        avg = rng.randint(70, 95)
        need = 4 * avg - sum(scores)
        if 50 <= need <= 100:
            break
    a, b, c = scores
    v1, s1 = eq(f"{avg} * 4")
    v2, s2 = eq(f"{a} + {b} + {c}")
    v3, s3 = eq(f"{v1} - {v2}")
    q = (f"{n} scored {a}, {b} and {c} on {p['his']} first three {tests}. What score does "
         f"{p['he']} need on the fourth to have an average of {avg} across all four?")
    sol = (f"An average of {avg} over four means a total of {s1}. So far {p['he']} has "
           f"{s2}, so {p['he']} needs {s3}.")
    return q, v3, sol


def m_average_best(rng, vocab):
    text, unit, lo, hi = rng.choice(vocab["average_best"]["contexts"])
    k = rng.choice([4, 5])
    while True:
        xs = [rng.randint(lo, hi) for _ in range(k)]
        if sum(xs) % k == 0 and len(set(xs)) == k:
            break
    listed = ", ".join(map(str, xs[:-1])) + f" and {xs[-1]}"
    v1, s1 = eq(" + ".join(map(str, xs)))
    v2, s2 = eq(f"{v1} / {k}")
    v3, s3 = eq(f"{max(xs)} - {v2}")
    q = text.format(xs=listed, k=vocab["count_words"][k].lower())
    sol = (f"The total is {s1} {unit}, so the average is {s2}. "
           f"The best was {max(xs)}, which is {s3} more.")
    return q, v3, sol


def m_how_many_more(rng, vocab):
    item, c1, c2 = rng.choice(vocab["how_many_more"]["items"])
    (a, _), (b, _) = people(rng, vocab, 2)
    while True:
        x, pa, y, pb = rng.randint(2, 9), rng.randint(4, 24), rng.randint(2, 9), \
            rng.randint(4, 24)
        if y * pb > x * pa and pa != pb:
            break
    v1, s1 = eq(f"{x} * {pa}")
    v2, s2 = eq(f"{y} * {pb}")
    v3, s3 = eq(f"{v2} - {v1}")
    q = (f"{a} buys {x} {c1} of {pa} {item}, and {b} buys {y} {c2} of {pb} {item}. "
         f"How many more {item} does {b} have than {a}?")
    sol = f"{a} has {s1} {item} and {b} has {s2}. So {b} has {s3} more."
    return q, v3, sol


def m_coin_change(rng, vocab):
    item = rng.choice(vocab["coin_change"]["items"])
    (n, p), = people(rng, vocab)
    while True:
        k, price = rng.randint(2, 6), rng.randint(2, 9)
        bill, (money, unit) = rng.choice([20, 50, 100]), rng.choice([("coins", 2), ("bills", 5)])
        change = bill - k * price
        if change > 0 and change % unit == 0 and change // unit >= 2:
            break
    v1, s1 = eq(f"{k} * {price}")
    v2, s2 = eq(f"{bill} - {v1}")
    v3, s3 = eq(f"{v2} / {unit}")
    q = (f"{n} buys {k} {item} at ${price} each and pays with a ${bill} bill. The cashier "
         f"gives the change only in ${unit} {money}. How many {money} does {p['he']} get?")
    sol = (f"The {item} cost {s1} dollars, so the change is {s2} dollars. "
           f"That is {s3} {money}.")
    return q, v3, sol


def m_clock(rng, vocab):
    text = rng.choice(vocab["clock"]["events"])
    (n, p), = people(rng, vocab)
    half, first, last = rng.choice([("am", 6, 11), ("pm", 1, 6)])
    h1 = rng.randint(first, last - 1)
    h2 = rng.randint(h1 + 1, min(last, h1 + 4))
    m1 = 5 * rng.randint(0, 10)
    m2 = 5 * rng.randint(m1 // 5 + 1, 11)
    t1, t2 = f"{h1}:{m1:02d} {half}", f"{h2}:{m2:02d} {half}"
    v1, s1 = eq(f"{h2} - {h1}")
    v2, s2 = eq(f"{v1} * 60")
    v3, s3 = eq(f"{m2} - {m1}")
    v4, s4 = eq(f"{v2} + {v3}")
    q = text.format(n=n, he=p["he"], his=p["his"], t1=t1, t2=t2)
    hours = "hour" if v1 == 1 else "hours"
    sol = (f"From {t1} to {h2}:{m1:02d} is {s1} {hours}, or {s2} minutes. "
           f"Then {s3} more minutes make {s4} minutes.")
    return q, v4, sol


def m_schedule(rng, vocab):
    text, lo, hi, step = rng.choice(vocab["schedule"]["events"])
    (n, p), = people(rng, vocab)
    while True:
        ds = [rng.randrange(lo, hi + 1, step) for _ in range(3)]
        brk = rng.choice([5, 10, 15, 20])
        if (sum(ds) + 2 * brk) % 60 == 0:
            break
    a, b, c = ds
    v1, s1 = eq(f"{a} + {b} + {c}")
    v2, s2 = eq(f"2 * {brk}")
    v3, s3 = eq(f"{v1} + {v2}")
    v4, s4 = eq(f"{v3} / 60")
    q = text.format(n=n, he=p["he"], a=a, b=b, c=c, brk=brk)
    sol = (f"The three parts take {s1} minutes and the two breaks {s2} minutes. "
           f"That is {s3} minutes, or {s4} hours.")
    return q, v4, sol


def m_fence(rng, vocab):
    place = rng.choice(vocab["fence"]["places"])
    (n, p), = people(rng, vocab)
    width, cost = rng.randint(4, 25), rng.randint(3, 15)
    length = rng.randint(width + 1, 40)
    v1, s1 = eq(f"{length} + {width}")
    v2, s2 = eq(f"{v1} * 2")
    if rng.random() < 0.5:
        v3, s3 = eq(f"{v2} * {cost}")
        q = (f"{n} has a rectangular {place} that is {length} metres long and {width} metres "
             f"wide. Fencing costs ${cost} per metre. How much will it cost {p['him']} to put "
             f"a fence all the way around it, in dollars?")
        sol = (f"Length plus width is {s1} metres, so the perimeter is {s2} metres. "
               f"The fence costs {s3} dollars.")
        return q, v3, sol
    gate = rng.randint(1, 4)
    v3, s3 = eq(f"{v2} - {gate}")
    v4, s4 = eq(f"{v3} * {cost}")
    q = (f"{n} has a rectangular {place} that is {length} metres long and {width} metres "
         f"wide. {p['He']} fences it all the way around except for a {gate}-metre gate. "
         f"Fencing costs ${cost} per metre. How much does the fencing cost, in dollars?")
    sol = (f"Length plus width is {s1} metres, so the perimeter is {s2} metres. Without the "
           f"gate {p['he']} needs {s3} metres, costing {s4} dollars.")
    return q, v4, sol


def m_tiles(rng, vocab):
    room = rng.choice(vocab["tiles"]["rooms"])
    while True:
        length, width, cover = rng.randint(3, 15), rng.randint(2, 10), rng.choice([2, 3, 4, 5])
        if length >= width and length * width % cover == 0:
            break
    price = rng.randint(12, 45)
    v1, s1 = eq(f"{length} * {width}")
    v2, s2 = eq(f"{v1} / {cover}")
    v3, s3 = eq(f"{v2} * {price}")
    q = (f"The floor of a rectangular {room} is {length} metres long and {width} metres wide. "
         f"One box of tiles covers {cover} square metres and costs ${price}. How much do the "
         f"tiles for the whole floor cost, in dollars?")
    sol = (f"The floor has an area of {s1} square metres. That takes {s2} boxes, "
           f"which cost {s3} dollars.")
    return q, v3, sol


def m_buses(rng, vocab):
    text, many, one, things = rng.choice(vocab["buses"]["contexts"])
    size, full = rng.randint(4, 50), rng.randint(2, 12)
    extra = rng.randint(1, size - 1)
    total = size * full + extra
    v1, s1 = eq(f"{full} * {size}")
    v2, s2 = eq(f"{total} - {v1}")
    v3, s3 = eq(f"{full} + 1")
    q = text.format(N=total, C=size)
    sol = (f"{full} full {many} hold {s1} {things}, which leaves {s2}. Those need one more "
           f"{one}, so {s3} {many}.")
    return q, v3, sol


def m_leftovers(rng, vocab):
    verb, batch, item, pack = rng.choice(vocab["leftovers"]["contexts"])
    (n, p), = people(rng, vocab)
    while True:
        a, b, k = rng.randint(2, 8), rng.randint(6, 24), rng.randint(4, 12)
        if a * b % k and a * b > 2 * k:
            break
    full = a * b // k
    v1, s1 = eq(f"{a} * {b}")
    v2, s2 = eq(f"{full} * {k}")
    v3, s3 = eq(f"{v1} - {v2}")
    q = (f"{n} {verb} {a} {batch} of {b} {item} and packs them into {pack} of {k}. After "
         f"filling as many {pack} as possible, how many {item} are left over?")
    sol = (f"{p['He']} has {s1} {item}. {full} full {pack} hold {s2}, "
           f"so {s3} are left over.")
    return q, v3, sol


def m_work_backwards(rng, vocab):
    obj = rng.choice(vocab["work_backwards"]["objects"])
    (n, p), (m, _) = people(rng, vocab, 2)
    now, gave = rng.randint(5, 40), rng.randint(2, 20)
    bought = rng.randint(3, min(25, 2 * now - 1))
    v1, s1 = eq(f"{now} * 2")
    v2, s2 = eq(f"{v1} - {bought}")
    v3, s3 = eq(f"{v2} + {gave}")
    q = (f"{n} had some {obj}. {p['He']} gave {gave} to {m}, then bought {bought} more, and "
         f"then gave half of what {p['he']} had to {p['his']} cousin. Now {p['he']} has {now} "
         f"{obj}. How many {obj} did {p['he']} have at the start?")
    sol = (f"Before giving half away {p['he']} had {s1}. Before buying {p['he']} had {s2}. "
           f"Before giving {gave} to {m} {p['he']} had {s3} {obj}.")
    return q, v3, sol


def m_think_of_number(rng, vocab):
    (n, p), = people(rng, vocab)
    x, a = rng.randint(3, 40), rng.randint(2, 9)
    if rng.random() < 0.5:
        b = rng.randint(1, 30)
        c = a * x + b
        v1, s1 = eq(f"{c} - {b}")
        v2, s2 = eq(f"{v1} / {a}")
        q = (f"{n} thinks of a number. {p['He']} multiplies it by {a}, then adds {b}, and "
             f"gets {c}. What number did {p['he']} think of?")
        sol = (f"Undo the steps in reverse order. Taking away {b} gives {s1}, "
               f"and dividing by {a} gives {s2}.")
        return q, v2, sol
    while True:
        b = rng.randint(1, a * x - 1)
        if (a * x - b) % 2 == 0:
            break
    c = (a * x - b) // 2
    v1, s1 = eq(f"{c} * 2")
    v2, s2 = eq(f"{v1} + {b}")
    v3, s3 = eq(f"{v2} / {a}")
    q = (f"{n} thinks of a number. {p['He']} multiplies it by {a}, subtracts {b}, and then "
         f"halves the result, getting {c}. What number did {p['he']} think of?")
    sol = (f"Undo the steps in reverse order. Doubling gives {s1}, adding {b} back gives "
           f"{s2}, and dividing by {a} gives {s3}.")
    return q, v3, sol


def m_combined_work(rng, vocab):
    verb, noun = rng.choice(vocab["combined_work"]["jobs"])
    (a, pa), (b, _) = people(rng, vocab, 2)
    r1, r2, t, h = rng.randint(3, 15), rng.randint(3, 15), rng.randint(1, 4), rng.randint(2, 6)
    total = r1 * t + (r1 + r2) * h
    v1, s1 = eq(f"{r1} * {t}")
    v2, s2 = eq(f"{total} - {v1}")
    v3, s3 = eq(f"{r1} + {r2}")
    v4, s4 = eq(f"{v2} / {v3}")
    q = (f"{a} can {verb} {r1} {noun} an hour and {b} can {verb} {r2} {noun} an hour. They "
         f"need to {verb} {total} {noun}. {a} works alone for {plural(t, 'hour')}, then {b} "
         f"joins {pa['him']}. How many more hours will it take them to finish?")
    sol = (f"Alone {a} does {s1}, leaving {s2} {noun}. Together they do {s3} an hour, "
           f"so they need {s4} more hours.")
    return q, v4, sol


def m_trip_rest(rng, vocab):
    who, lo, hi, step = rng.choice(vocab["trip_rest"]["travellers"])
    v, t1, t2 = rng.randrange(lo, hi + 1, step), rng.randint(2, 5), rng.randint(1, 6)
    d1, total = v * t1, v * (t1 + t2)
    v1, s1 = eq(f"{d1} / {t1}")
    v2, s2 = eq(f"{total} - {d1}")
    v3, s3 = eq(f"{v2} / {v1}")
    q = (f"{who} is making a {total}-km trip. It covers the first {d1} km in {t1} hours. "
         f"If it keeps the same speed, how many more hours will it take to finish the trip?")
    sol = (f"Its speed is {s1} km per hour. There are {s2} km left, "
           f"which take {s3} hours.")
    return q, v3, sol


def m_meeting(rng, vocab):
    how, lo, hi = rng.choice(vocab["meeting"]["modes"])
    (a, _), (b, _) = people(rng, vocab, 2)
    while True:
        v1, v2, h = rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(1, 4)
        if v1 != v2:
            break
    dist = (v1 + v2) * h
    w1, s1 = eq(f"{v1} + {v2}")
    w2, s2 = eq(f"{dist} / {w1}")
    w3, s3 = eq(f"{v1} * {w2}")
    q = (f"{a} and {b} live {dist} km apart. They set off towards each other at the same "
         f"time, both {how}, {a} at {v1} km per hour and {b} at {v2} km per hour. How many "
         f"kilometres from {a}'s home do they meet?")
    sol = (f"Together they close {s1} km each hour, so they meet after {s2} hours. "
           f"By then {a} has gone {s3} km.")
    return q, w3, sol


def m_packs(rng, vocab):
    outer, inner, item = rng.choice(vocab["packs"]["items"])
    (n, p), = people(rng, vocab)
    c, a, b = rng.randint(2, 9), rng.randint(2, 12), rng.randint(3, 12)
    v1, s1 = eq(f"{a} * {b}")
    v2, s2 = eq(f"{v1} * {c}")
    given = rng.randint(1, v2 - 1)
    v3, s3 = eq(f"{v2} - {given}")
    q = (f"{n} buys {c} {outer}. Each one holds {a} {inner}, and each of those has {b} "
         f"{item}. {p['He']} gives away {given} {item}. How many {item} does {p['he']} have "
         f"left?")
    sol = (f"Each of the {outer} holds {s1} {item}, so {p['he']} buys {s2}. "
           f"After giving some away {p['he']} has {s3} left.")
    return q, v3, sol


def m_commission(rng, vocab):
    item, lo, hi, step = rng.choice(vocab["commission"]["items"])
    (n, p), = people(rng, vocab)
    while True:
        price, k, r = rng.randrange(lo, hi + 1, step), rng.randint(2, 12), rng.randint(2, 15)
        if price * k * r % 100 == 0:
            break
    base = 50 * rng.randint(4, 16)
    v1, s1 = eq(f"{k} * {price}")
    v2, s2 = eq(f"{v1} * {r} / 100")
    v3, s3 = eq(f"{base} + {v2}")
    q = (f"{n} sells {item} for ${price} each. {p['He']} earns ${base} a week plus {r}% "
         f"commission on {p['his']} sales. One week {p['he']} sells {k} {item}. How much "
         f"does {p['he']} earn that week, in dollars?")
    sol = (f"{p['His']} sales are {s1} dollars, and the commission is {s2} dollars. "
           f"{p['He']} earns {s3} dollars.")
    return q, v3, sol


def m_original_price(rng, vocab):
    item = rng.choice(vocab["original_price"]["items"])
    (n, p), = people(rng, vocab)
    pct = rng.choice([10, 20, 25, 30, 40, 50, 60, 75])
    while True:
        before = 10 * rng.randint(2, 40)
        if before * (100 - pct) % 100 == 0:
            break
    paid = before * (100 - pct) // 100
    v1, s1 = eq(f"100 - {pct}")
    v2, s2 = eq(f"{paid} * 100 / {v1}")
    q = (f"In a sale, everything is {pct}% off. {n} pays ${paid} for a {item}. ")
    sol = (f"{p['He']} pays {s1} percent of the old price, "
           f"so the old price was {s2} dollars.")
    if rng.random() < 0.5:
        return q + f"What was the price of the {item} before the sale, in dollars?", v2, sol
    v3, s3 = eq(f"{v2} - {paid}")
    return (q + f"How many dollars did {p['he']} save?", v3,
            sol + f" {p['He']} saved {s3} dollars.")


def m_weekly_supply(rng, vocab):
    text, unit, pack = rng.choice(vocab["weekly_supply"]["contexts"])
    while True:
        d, size, w = rng.randint(2, 12), rng.choice([2, 3, 4, 5, 6, 10]), rng.randint(1, 6)
        if 7 * w * d % size == 0:
            break
    price = rng.randint(2, 15)
    v1, s1 = eq(f"{w} * 7")
    v2, s2 = eq(f"{v1} * {d}")
    v3, s3 = eq(f"{v2} / {size}")
    v4, s4 = eq(f"{v3} * {price}")
    q = text.format(d=d, s=size, c=price, w=plural(w, "week"))
    sol = (f"{plural(w, 'week').capitalize()} is {s1} days, which need {s2} {unit}. That is "
           f"{s3} {pack}, costing {s4} dollars.")
    return q, v4, sol


def m_laps(rng, vocab):
    text, lengths = rng.choice(vocab["laps"]["contexts"])
    (n, p), = people(rng, vocab)
    while True:
        length, k, d, w = rng.choice(lengths), rng.randint(2, 20), rng.randint(2, 6), \
            rng.randint(1, 4)
        if length * k * d * w % 1000 == 0:
            break
    v1, s1 = eq(f"{length} * {k}")
    v2, s2 = eq(f"{v1} * {d}")
    v3, s3 = eq(f"{v2} * {w}")
    v4, s4 = eq(f"{v3} / 1000")
    q = text.format(n=n, he=p["he"], L=length, k=k, d=d, w=plural(w, "week"))
    sol = (f"Each day is {s1} metres and each week {s2} metres. In {plural(w, 'week')} "
           f"that is {s3} metres, or {s4} km.")
    return q, v4, sol


MATH_TEMPLATES = [m_shopping, m_parent_age, m_sibling_ages, m_journey, m_work_rate, m_sharing,
                  m_practice, m_fractions, m_discount, m_wages, m_garden, m_savings_goal,
                  m_recipe, m_collections, m_pages, m_fuel, m_tickets, m_growth, m_split_bill,
                  m_cut_pieces, m_interest, m_quiz, m_ratio, m_unit_rate, m_average_needed,
                  m_average_best, m_how_many_more, m_coin_change, m_clock, m_schedule, m_fence,
                  m_tiles, m_buses, m_leftovers, m_work_backwards, m_think_of_number,
                  m_combined_work, m_trip_rest, m_meeting, m_packs, m_commission,
                  m_original_price, m_weekly_supply, m_laps]

# Held out of training: one template from each of six kinds of reasoning. Each kind keeps
# at least one other template for training (in brackets), so the "unseen" split asks for a
# known skill in new wording and a new layout of steps, as a fresh GSM8K problem does.
UNSEEN_TEMPLATES = (
    "m_average_needed",  # averages, worked backwards from a target (m_average_best)
    "m_clock",           # durations between clock times (m_practice, m_schedule)
    "m_tiles",           # area, then boxes and cost (m_fence, m_garden)
    "m_buses",           # dividing with a remainder, rounding up (m_leftovers)
    "m_original_price",  # a percentage undone (m_discount, m_growth, m_work_backwards)
    "m_meeting",         # speed, distance and time of two movers (m_journey, m_trip_rest)
)
