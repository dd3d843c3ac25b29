#!/usr/bin/env python3
"""Write the project's two offline prompt sets: data/instructions.jsonl and data/math.jsonl.

The paper (Ouyang et al. 2024, arXiv 2410.10141) takes its prompts from Alpaca (general
instructions) and GSM8K (grade-school math word problems). Neither can be fetched offline,
so this script builds stand-ins that play the same two roles:

- instructions.jsonl: varied, natural user requests (explain, list, rewrite, classify,
  advise, write, summarise, compare, define, brainstorm, restyle, translate, plan, how-to,
  question), made from hand-written templates and hand-written subject lists in which
  every subject fits every template of its task;
- math.jsonl: two- to four-step word problems from 19 templates, with the integer answer
  computed here and a short worked solution whose every step ``a op b = c`` is checked.

The output is deterministic (fixed seed, ``random.Random``, stdlib only): running
``python scripts/make_prompts.py`` reproduces the committed files byte for byte.
Use ``--out DIR`` to write somewhere else.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SEED = 2410
MATH_PER_TEMPLATE = 20

# --------------------------------------------------------------------------------------
# Instructions: each task maps templates to a list of subjects that fit all of them.
# --------------------------------------------------------------------------------------

EXPLAIN_T = [
    "Explain {x} in simple terms.",
    "Can you explain {x} to a curious twelve-year-old?",
    "Give me a short explanation of {x}, with one everyday example.",
    "I keep hearing people talk about {x}. Can you explain the basics?",
    "Explain {x} in three or four sentences, without jargon.",
    "How would you explain {x} to a friend who has never studied the subject?",
]
EXPLAIN_X = [
    "photosynthesis", "compound interest", "the greenhouse effect", "inflation",
    "supply and demand", "public-key encryption", "black holes", "plate tectonics",
    "machine learning", "natural selection", "the placebo effect", "opportunity cost",
    "the Doppler effect", "the water cycle", "vaccination", "antibiotic resistance",
    "the immune system", "general relativity", "credit scores", "the Domain Name System",
    "nuclear fission", "the scientific method", "jet lag", "recursion in programming",
    "ocean tides", "the Pythagorean theorem", "browser caching", "the stock market",
    "index funds", "carbon offsets", "the blood-brain barrier", "quantum entanglement",
    "circadian rhythms", "the Fibonacci sequence", "the legislative process", "blockchain",
]

LIST_T = [
    "List {n} {x}.",
    "What are {n} {x}? Please answer with a bulleted list.",
    "Give me {n} {x}, with one sentence on each.",
    "What are {n} {x}? Keep each point short.",
]
LIST_N = ["three", "four", "five", "six", "seven", "eight", "ten"]
LIST_X = [
    "tips for falling asleep faster", "common mistakes new runners make",
    "ways to reduce food waste at home", "easy houseplants for beginners",
    "classic novels worth reading in your twenties", "habits that help when studying for exams",
    "inexpensive hobbies to try this winter", "questions to ask at the end of a job interview",
    "signs that a website might be a scam", "healthy snacks that need no cooking",
    "things to pack for a weekend camping trip", "ways to save money on groceries",
    "board games that work well for two players",
    "strategies for staying focused while working from home",
    "benefits of learning a second language", "good icebreaker questions for a team meeting",
    "ways to make a small apartment feel bigger", "warm-up exercises to do before lifting weights",
    "famous inventions from the nineteenth century", "vegetables that grow well in containers",
    "ways to be a better listener", "things to check when buying a used car",
    "simple ways to lower your electricity bill", "reasons to keep a journal",
    "common causes of headaches", "polite ways to decline an invitation",
    "key events of the French Revolution", "programming languages that are good for beginners",
]

REWRITE = {
    "grammar": (
        [
            'Fix the grammar and spelling in this sentence: "{x}"',
            "Correct any mistakes in the following text and return only the corrected version:\n\n{x}",
            "Please proofread this: {x}",
        ],
        [
            "Their going to the park tomorrow, weather or not it rains.",
            "Me and him was late to the meeting because the train were delayed.",
            "The informations in this report is not accurate.",
            "I could of finished the project if I had more time.",
            "Each of the students have submitted they're homework.",
            "She don't like coffee, but she drink tea every mornings.",
            "Its been a long time since we seen each other.",
            "The team are playing good this season, there defence is realy strong.",
            "Between you and I, the new manager seem nice.",
            "We was planning to go to the beech but it start raining.",
            "Less people came to the concert then we expected.",
            "He recieved an award for his acheivements in science.",
        ],
    ),
    "concise": (
        [
            'Rewrite this sentence to be more concise: "{x}"',
            "Make the following text shorter without losing its meaning:\n\n{x}",
            "Tighten up this sentence: {x}",
        ],
        [
            "Due to the fact that it was raining outside, we made the decision to stay inside "
            "the house for the duration of the afternoon.",
            "In my personal opinion, I think that we should probably consider the possibility of "
            "postponing the meeting until a later date.",
            "At this point in time, the company is currently in the process of reviewing all of "
            "the applications that it has received.",
            "The reason why I am writing this email to you is in order to ask whether you might "
            "be available to meet next week.",
            "It is absolutely essential and necessary that each and every employee completes the "
            "safety training.",
            "The book, which was written by an author who is very well known, was read by a large "
            "number of people all over the world.",
            "Despite the fact that he had trained for many months, he was not able to finish the "
            "marathon in the time he had hoped for.",
            "Our team has made the decision to go ahead and move forward with the plan that was "
            "proposed last week.",
            "There are many people who believe that exercising on a regular basis is good for both "
            "the body and the mind.",
            "With regard to your question about the refund, we would like to inform you that it "
            "has now been processed.",
        ],
    ),
    "formal": (
        [
            'Rewrite this message in a formal, professional tone: "{x}"',
            'How could I say this more professionally? "{x}"',
            "Make this text sound suitable for a work email:\n\n{x}",
        ],
        [
            "hey, can u send me the report asap? thx",
            "Sorry, can't make it to the meeting, something came up.",
            "The printer's broken again. Somebody needs to fix it, it's driving me nuts.",
            "Just checking if you got my last email, haven't heard back.",
            "Yeah the numbers look kinda off, can we talk about it tomorrow?",
            "Gonna be late today, traffic is crazy.",
            "Thanks a ton for the help with the presentation, you're a lifesaver!",
            "Not sure this plan is gonna work, lots of stuff could go wrong.",
        ],
    ),
    "polite": (
        [
            'Rewrite this so it sounds kinder and more polite: "{x}"',
            "Soften the tone of this message without changing what it asks for:\n\n{x}",
        ],
        [
            "Your report was late again. Don't let it happen next time.",
            "Stop leaving your dishes in the sink.",
            "I need that money you owe me back by Friday.",
            "Your music is too loud. Turn it down.",
            "You forgot to invite me to the meeting.",
            "This isn't what I asked for. Redo it.",
        ],
    ),
}

CLASSIFY = {
    "sentiment": (
        [
            'Classify the sentiment of this review as positive, negative, or neutral: "{x}"',
            "Is the following customer review positive, negative, or mixed? Explain briefly.\n\n"
            "Review: {x}",
            'What is the sentiment of this comment? "{x}"',
        ],
        [
            "The battery lasts all day and the screen is gorgeous. Best phone I've owned.",
            "The food arrived cold and the delivery driver was rude.",
            "The hotel was fine. Nothing special, but the bed was comfortable.",
            "I loved the first half of the movie, but the ending was a huge letdown.",
            "These headphones broke after two weeks. Complete waste of money.",
            "Fast shipping, exactly as described. Would buy again.",
            "The staff were friendly, although the wait for a table was over an hour.",
            "The instructions were confusing and two screws were missing from the box.",
            "Honestly the best pizza in town. The crust is perfect.",
            "It does the job. The design is a bit dated.",
            "The app keeps crashing whenever I try to upload a photo.",
            "My kids have played with this puzzle every day since it arrived.",
        ],
    ),
    "topic": (
        [
            "Which category does this news headline belong to: politics, sports, business, "
            'science, or entertainment?\n\n"{x}"',
            'Classify this headline by topic: "{x}"',
        ],
        [
            "Central bank raises interest rates for the third time this year",
            "Local team clinches championship with last-minute goal",
            "Astronomers detect water vapour on a distant exoplanet",
            "Parliament passes new law on data privacy",
            "Streaming service announces sequel to hit fantasy series",
            "Tech giant reports record quarterly profits",
            "Marathon runner breaks national record in Berlin",
            "Study finds link between sleep and memory in teenagers",
            "Award-winning director to adapt classic novel for the stage",
            "Mayor proposes new budget for public transport",
        ],
    ),
    "spam": (
        [
            "Is this message spam or not spam? Give a one-line reason.\n\n{x}",
            'Would you classify the following email as spam? "{x}"',
        ],
        [
            "Congratulations! You have won a free cruise. Click here within 24 hours to claim "
            "your prize.",
            "Hi Sam, the team lunch has moved to Thursday at noon. See you there.",
            "URGENT: your account has been suspended. Verify your password at the link below.",
            "Reminder: your dentist appointment is tomorrow at 3 pm.",
            "Earn $5,000 a week from home with this one simple trick!",
            "Your library book is due back on Monday. You can renew it online.",
        ],
    ),
    "groups": (
        ["{x}"],
        [
            "Sort these foods into fruits and vegetables: tomato, carrot, apple, spinach, banana, "
            "cucumber.",
            "Classify each of these animals as a mammal, bird, reptile, or fish: dolphin, penguin, "
            "gecko, salmon, bat, ostrich.",
            "Which of these are renewable energy sources and which are not: solar, coal, wind, "
            "natural gas, geothermal, oil?",
            'Label each of the following sentences as a fact or an opinion: "Paris is the capital '
            'of France." "Summer is the best season." "Water boils at 100 degrees Celsius at sea '
            'level."',
            "Group these instruments into string, wind, and percussion: violin, flute, drum, "
            "cello, trumpet, xylophone.",
        ],
    ),
}

ADVISE_T = [
    "{x} What should I do?",
    "{x} Any advice?",
    "I could use some advice. {x}",
    "{x} How would you handle this?",
]
ADVISE_X = [
    "I have a job interview next week and I get very nervous when speaking to strangers.",
    "My roommate never cleans up after themselves, and I don't want to start a fight.",
    "I want to start running but I haven't exercised in years.",
    "I keep procrastinating on my thesis and the deadline is in two months.",
    "A close friend borrowed money from me months ago and hasn't mentioned it since.",
    "I've been offered a promotion that would mean moving to another city.",
    "My houseplants keep dying even though I water them every day.",
    "I'm moving to a new country and don't speak the language yet.",
    "My manager keeps giving me tasks at the last minute.",
    "I want to save for a house but I never seem to have money left at the end of the month.",
    "My teenage son spends most of the night on his phone.",
    "I feel overwhelmed by the number of emails I get every day.",
    "I'm thinking about switching careers from accounting to software development.",
    "My neighbour's dog barks for hours every morning.",
    "I have to give a toast at my sister's wedding and I'm not a confident speaker.",
    "I'm a new team lead and one of my reports used to be my peer.",
    "I want to learn to cook but I only have half an hour in the evenings.",
    "My elderly parents live far away and I worry about them.",
    "I can't decide whether to buy a new laptop now or wait for next year's models.",
    "I get distracted by my phone every time I try to read.",
    "I've been invited to two weddings on the same day.",
    "I made a mistake in a report that my boss already sent to a client.",
    "My group project partners aren't doing their share of the work.",
    "I want to make new friends after moving to a big city.",
    "I keep waking up at 3 a.m. and can't get back to sleep.",
    "My cat has started scratching the sofa.",
]

WRITE = {
    "poem": (
        [
            "Write a short poem about {x}.",
            "Write a haiku about {x}.",
            "Compose a four-line rhyming poem about {x}.",
            "Write a limerick about {x}.",
        ],
        [
            "the first snow of winter", "a lighthouse keeper", "morning coffee", "an old oak tree",
            "the city at night", "a cat who thinks it's a king", "autumn leaves",
            "learning to ride a bike", "the ocean at dawn", "a lost umbrella",
        ],
    ),
    "email": (
        [
            "Write a short email {x}.",
            "Draft a polite email {x}.",
            "Help me write an email {x}. Keep it under 150 words.",
        ],
        [
            "asking my manager for a day off next Friday",
            "thanking a colleague for covering my shift",
            "inviting my team to a farewell lunch for a coworker",
            "asking my landlord to fix a leaking tap",
            "following up on a job application I sent two weeks ago",
            "declining a meeting invitation because of a scheduling conflict",
            "requesting an extension on a university assignment",
            "introducing myself to a new client",
            "apologising to a customer for a delayed order",
            "asking a professor for a letter of recommendation",
        ],
    ),
    "story": (
        [
            "Write a short story (about 200 words) about {x}.",
            "Tell me a bedtime story about {x}.",
            "Write the opening paragraph of a story about {x}.",
        ],
        [
            "a robot who learns to paint",
            "a girl who finds a map in her grandmother's attic",
            "a town where it never stops raining",
            "two rival bakers who must work together",
            "a dragon who is afraid of the dark",
            "an astronaut who hears music on the Moon",
            "a dog trying to find its way home",
            "a time traveller stuck in the year 1850",
            "a library book that writes back",
            "the last tree in a futuristic city",
        ],
    ),
    "product": (
        [
            "Write a product description for {x}.",
            "Write a short, catchy product description for {x}.",
        ],
        [
            "a reusable water bottle that keeps drinks cold for 24 hours",
            "a pair of noise-cancelling headphones",
            "a handmade ceramic mug",
            "a lightweight hiking backpack",
            "a smart plant pot that reminds you to water",
        ],
    ),
    "post": (
        ["Write a social media post announcing {x}."],
        [
            "the opening of a new community garden",
            "a bake sale for the school library",
            "a free coding workshop for teenagers",
        ],
    ),
}

SUMMARISE_T = [
    "Summarise the following passage in one sentence:\n\n{x}",
    "Give me a two-sentence summary of this text:\n\n{x}",
    "What is the main point of this paragraph?\n\n{x}",
    "TL;DR this for me:\n\n{x}",
    "Summarise this in three bullet points:\n\n{x}",
]
SUMMARISE_X = [
    "Honeybees communicate the location of food through a movement called the waggle dance. A "
    "forager returning to the hive walks in a figure-eight pattern, and the angle of the straight "
    "run relative to vertical tells other bees the direction of the flowers relative to the sun. "
    "The length of the run indicates distance. Researchers decoded this behaviour in the 1940s, "
    "and it remains one of the best-studied examples of animal communication.",
    "The city council has approved a plan to convert three downtown parking lots into small parks "
    "over the next two years. Supporters say the green spaces will reduce summer heat and give "
    "residents more places to gather. Some local business owners worry that losing parking will "
    "drive customers away, so the council has promised to expand bus service and add bike racks "
    "near the main shopping streets.",
    "Sleep plays a central role in memory. During deep sleep, the brain replays experiences from "
    "the day and transfers them from short-term to long-term storage. Studies show that students "
    "who sleep well after learning new material remember more of it than those who stay up late. "
    "Pulling an all-nighter before an exam may therefore do more harm than good.",
    "The Great Wall of China is not a single wall but a series of fortifications built over many "
    "centuries by different dynasties. The best-preserved sections, made of brick and stone, date "
    "from the Ming dynasty, which ruled from 1368 to 1644. Earlier walls were often built of "
    "rammed earth and have largely eroded. Contrary to popular belief, the wall is not visible to "
    "the naked eye from space.",
    "Remote work has grown rapidly over the past few years. Many employees appreciate the lack of "
    "a commute and the flexibility to manage their own schedules. However, some report feeling "
    "isolated and find it harder to separate work from home life. Companies are experimenting "
    "with hybrid arrangements, in which staff spend a few days a week in the office and the rest "
    "at home.",
    "Octopuses are remarkably intelligent invertebrates. They can solve puzzles, open jars, and "
    "escape from aquarium tanks. Each of their eight arms contains a large share of their neurons, "
    "allowing the arms to react to touch and taste somewhat independently. Octopuses can also "
    "change the colour and texture of their skin in a fraction of a second to blend into their "
    "surroundings.",
    "Our quarterly sales rose by 12 percent compared with the same period last year, driven "
    "mainly by strong demand for the new line of kitchen appliances. Online orders now make up "
    "almost half of all revenue. Costs also increased because of higher shipping prices, so "
    "profit grew by a more modest 4 percent. The company plans to open two new warehouses next "
    "year to shorten delivery times.",
    "The printing press, developed by Johannes Gutenberg around 1440, used movable metal type to "
    "produce pages far more quickly than copying by hand. Books became cheaper and more widely "
    "available, which helped spread literacy and new ideas across Europe. Historians often link "
    "the press to the Reformation and the Scientific Revolution, since both depended on the rapid "
    "sharing of written arguments.",
    "Composting turns kitchen scraps and garden waste into rich soil. Microorganisms break down "
    "materials such as vegetable peels, coffee grounds, and dry leaves, producing heat as they "
    "work. A good compost pile needs a balance of green materials, which are high in nitrogen, and "
    "brown materials, which are high in carbon, along with air and moisture. Within a few months, "
    "the pile becomes dark, crumbly compost.",
    "Marie Curie was the first person to win Nobel Prizes in two different sciences: physics in "
    "1903 and chemistry in 1911. Working with her husband Pierre, she discovered the elements "
    "polonium and radium and studied radioactivity, a term she helped popularise. Her research "
    "laid the foundations for cancer treatments using radiation, although long-term exposure to "
    "radioactive materials damaged her own health.",
    "A new study followed 2,000 adults for ten years and found that those who walked at least "
    "7,000 steps a day had a lower risk of heart disease than those who walked fewer than 4,000. "
    "The benefits levelled off above about 10,000 steps. The researchers note that the study shows "
    "an association rather than proof of cause, but they say the results support simple daily "
    "walking as a health habit.",
    "The library will introduce a library of things next month, letting members borrow items such "
    "as sewing machines, power drills, camping gear, and board games for up to two weeks. The "
    "project aims to reduce waste and save residents money on tools they rarely need. Items can be "
    "reserved online, and a small deposit is required for some of the more expensive equipment.",
    "Coral reefs cover less than one percent of the ocean floor, yet they support about a quarter "
    "of all marine species. Rising sea temperatures cause corals to expel the algae living in "
    "their tissues, a process known as bleaching. Without the algae, corals lose their main food "
    "source and their colour. If water temperatures return to normal quickly, corals can recover, "
    "but repeated bleaching events often kill them.",
    "The Apollo 11 mission landed on the Moon on 20 July 1969. Neil Armstrong and Buzz Aldrin "
    "spent about two and a half hours walking on the surface, collecting rock samples and setting "
    "up experiments, while Michael Collins orbited above in the command module. The mission "
    "fulfilled a goal set by President Kennedy in 1961 and was watched on television by hundreds "
    "of millions of people.",
    "Many people believe that we use only ten percent of our brains, but this is a myth. Brain "
    "imaging shows that almost all regions of the brain are active over the course of a day, even "
    "during sleep. Different tasks activate different areas, and damage to almost any part of the "
    "brain causes some loss of function. The myth may have spread through misquoted early "
    "psychology research and self-help books.",
    "Thank you for contacting customer support. We have reviewed your request about the damaged "
    "blender. Because the item was delivered broken, we will send a replacement free of charge "
    "within five business days. You do not need to return the damaged blender; please dispose of "
    "it safely. If the replacement has any problems, reply to this email and we will issue a full "
    "refund.",
    "Inflation measures how quickly the general level of prices rises over time. When inflation is "
    "moderate, it usually reflects a growing economy. When it is very high, money loses value "
    "quickly, savings shrink, and businesses struggle to plan. Central banks try to keep inflation "
    "near a target, often around two percent, mainly by raising or lowering interest rates.",
    "The Amazon rainforest spans nine countries and is home to millions of species, many of which "
    "have not yet been described by scientists. Its trees store huge amounts of carbon and help "
    "produce rainfall far beyond the forest itself. Deforestation for cattle ranching, farming, "
    "and logging has reduced its area significantly, and scientists warn that large parts could "
    "turn into dry savannah.",
    "Learning a musical instrument as an adult is entirely possible. Adults may not pick up new "
    "motor skills as quickly as children, but they often practise more deliberately and "
    "understand music theory faster. Short daily practice sessions tend to work better than long "
    "weekly ones. Many adult learners also find that playing with others, such as in a community "
    "band, keeps them motivated.",
    "Starting next semester, the school will replace its paper textbooks with tablets for "
    "students in grades seven to nine. Administrators say the change will save money over time "
    "and let teachers update materials more easily. Some parents have raised concerns about "
    "screen time and the cost of repairing damaged devices. The school plans to hold an "
    "information evening to answer questions before the rollout.",
]

COMPARE_T = [
    "Compare {a} and {b}.",
    "What are the main differences between {a} and {b}?",
    "Make a short table comparing {a} and {b}.",
]
COMPARE_CHOICE_T = COMPARE_T + [  # only for pairs one chooses between
    "How do {a} and {b} differ, and when would you choose each?",
    "What are the pros and cons of {a} versus {b}?",
]
COMPARE_X = [
    ("crocodiles", "alligators"), ("weather", "climate"), ("viruses", "bacteria"),
    ("mitosis", "meiosis"), ("hurricanes", "tornadoes"), ("impressionism", "expressionism"),
    ("frogs", "toads"), ("empathy", "sympathy"), ("classical music", "jazz"),
    ("the Greek gods", "the Roman gods"),
]
COMPARE_CHOICE_X = [
    ("renting a home", "buying a home"), ("electric cars", "petrol cars"),
    ("Python", "JavaScript"), ("tea", "coffee"), ("e-books", "printed books"),
    ("running", "swimming"), ("stocks", "bonds"), ("baking soda", "baking powder"),
    ("solar panels", "wind turbines"), ("a debit card", "a credit card"),
    ("SQL databases", "NoSQL databases"), ("butter", "margarine"),
    ("working from home", "working in an office"),
    ("learning the guitar", "learning the piano"), ("travelling by train", "flying"),
    ("yoga", "pilates"), ("a latte", "a cappuccino"), ("RAM", "disk storage"),
]

DEFINE_T = [
    'Define "{x}".',
    'What does the word "{x}" mean? Use it in an example sentence.',
    'What is the meaning of "{x}"?',
    'Give a simple definition of "{x}" and a synonym.',
]
DEFINE_X = [
    "ephemeral", "serendipity", "ubiquitous", "pragmatic", "melancholy", "resilience",
    "ambiguous", "nostalgia", "procrastinate", "meticulous", "benevolent", "candid", "eloquent",
    "frugal", "gregarious", "hubris", "lethargic", "mundane", "nuance", "obsolete",
    "quintessential", "redundant", "scrutinize", "tenacious", "vicarious", "zealous",
]
DEFINE_FIELD_T = [
    "In {f}, what is meant by {x}?",
    "What is {x} in {f}? Give a short definition.",
]
DEFINE_FIELD_X = [
    ("economics", "a recession"), ("biology", "an ecosystem"), ("computing", "an algorithm"),
    ("law", "a precedent"), ("music", "a chord progression"), ("physics", "momentum"),
    ("statistics", "the median"), ("grammar", "a gerund"),
]

BRAINSTORM = {
    "names": (
        ["Brainstorm {n} name ideas for {x}.", "Suggest {n} names for {x}."],
        [
            "a neighbourhood coffee shop", "a podcast about personal finance", "a hiking club",
            "a small bakery that specialises in sourdough", "a dog-walking business",
            "a mobile app that tracks house plants", "a school robotics team",
            "a fantasy tavern in my novel",
        ],
    ),
    "ideas": (
        [
            "Give me ideas for {x}.",
            "Brainstorm some ideas for {x}.",
            "What are some creative ideas for {x}?",
        ],
        [
            "a tenth birthday party on a small budget", "a rainy Sunday afternoon with young kids",
            "a team-building activity for a remote team", "a science fair project about plants",
            "a first date that isn't dinner and a movie", "a blog post about sustainable living",
            "using up leftover rice", "a gift for a friend who loves gardening",
            "decorating a small balcony", "a school fundraiser", "a short film with no dialogue",
            "making a long commute more enjoyable", "a themed dinner party",
            "a weekend project to do with my teenager",
            "keeping seniors active at a community centre", "a YouTube channel about history",
        ],
    ),
}

RESTYLE_FUN_T = [
    "Rewrite the following as if it were spoken by a pirate:\n\n{x}",
    "Rewrite this in the style of Shakespeare:\n\n{x}",
    "Rewrite this sentence as the opening of a fairy tale:\n\n{x}",
    "Rewrite this as an excited sports commentator would say it: {x}",
    "Turn this into a short, dramatic movie-trailer voice-over: {x}",
]
RESTYLE_FUN_X = [
    "We need to leave early tomorrow to catch the ferry, so please pack tonight.",
    "The meeting has been moved to Thursday because half the team is travelling.",
    "I lost my keys again and had to wait an hour for the locksmith.",
    "The new café downtown serves the best hot chocolate I've ever had.",
    "Our cat knocked the birthday cake off the table right before the party.",
    "The library will close early on Friday for staff training.",
    "After three hours of hiking, we finally reached the top of the mountain.",
    "Dinner is ready, so please wash your hands and come to the table.",
    "The city council voted to build a new bike lane along the river.",
    "My phone battery died in the middle of the video call.",
]
RESTYLE_PLAIN_T = [
    "Rewrite this in plain English: {x}",
    'Translate this jargon into everyday language: "{x}"',
    "What does this actually mean? Put it in simple words.\n\n{x}",
]
RESTYLE_PLAIN_X = [
    "We need to leverage our core competencies to drive synergies across verticals going forward.",
    "Please circle back once you have bandwidth to action the deliverables.",
    "The patient presented with acute dyspnoea and was administered supplemental oxygen.",
    "The lessee shall indemnify the lessor against all claims arising from the use of the premises.",
    "Our solution empowers stakeholders to operationalise data-driven insights at scale.",
    "The defendant was remanded in custody pending a further hearing.",
]

TRANSLATE_T = [
    'Translate "{x}" into {lang}.',
    'How do you say "{x}" in {lang}?',
]
TRANSLATE_LANGS = ["French", "Spanish", "German", "Italian", "Portuguese", "Japanese"]
TRANSLATE_X = [
    "Where is the nearest train station?", "Could I have the bill, please?",
    "I'm allergic to peanuts.", "What time does the museum open?", "Thank you for your help.",
    "How much does this cost?", "I would like to book a table for two.",
    "Happy birthday, I hope you have a wonderful day!",
]

PLAN_T = [
    "Create {d} plan to help me {x}.",
    "Make me {d} schedule to {x}.",
    "I want to {x}. Can you outline {d} plan?",
]
PLAN_X = [
    ("prepare for a 10 km run", "six-week"), ("learn the basics of Spanish", "three-month"),
    ("declutter my apartment", "one-week"), ("study for a chemistry final exam", "two-week"),
    ("eat more vegetables", "one-week"), ("learn to code in Python", "eight-week"),
    ("get back into reading", "one-month"), ("save $1,000", "three-month"),
    ("prepare for a job interview", "five-day"), ("build a morning routine", "two-week"),
    ("train my puppy to walk on a leash", "four-week"),
    ("write the first draft of a short novel", "three-month"),
    ("visit Rome with two kids", "three-day"), ("improve my posture", "four-week"),
    ("reduce my screen time", "two-week"), ("start a vegetable garden", "one-month"),
    ("learn to play chess", "six-week"), ("organise a community clean-up day", "one-month"),
    ("get ready for a half marathon", "twelve-week"), ("improve my public speaking", "one-month"),
    ("revise for my driving theory test", "two-week"), ("explore Tokyo on a budget", "four-day"),
    ("launch a small online shop", "eight-week"), ("get fit enough to hike a mountain", "ten-week"),
]

HOWTO_T = [
    "How do I {x}?",
    "What's the best way to {x}?",
    "Can you walk me through how to {x}, step by step?",
]
HOWTO_X = [
    "change a flat tyre on a bicycle", "make a sourdough starter", "set up a monthly budget",
    "remove a red wine stain from a carpet", "back up the photos on my phone",
    "write a good cover letter", "boil an egg so the yolk stays soft",
    "unclog a bathroom sink without chemicals", "repot a houseplant", "tie a bowline knot",
    "improve my credit score", "make cold brew coffee", "clean a cast-iron pan",
    "set up two-factor authentication", "negotiate a higher salary", "start a compost bin",
    "learn to touch type", "fold a fitted sheet", "work out a tip in my head",
    "make a good first impression at a new job", "sharpen a kitchen knife",
    "create a strong password I can remember", "keep basil alive indoors",
    "jump-start a car battery",
]

QUESTIONS = [
    "Why is the sky blue?", "How do airplanes stay in the air?",
    "What causes the seasons on Earth?", "Why do cats purr?",
    "Who wrote Pride and Prejudice, and what is it about?", "How far away is the Moon?",
    "Why do onions make you cry?", "What happened when the Berlin Wall fell?",
    "How does a refrigerator keep food cold?", "Why do we dream?",
    "What is the tallest mountain in the solar system?", "How do bees make honey?",
    "Why is the ocean salty?", "What were the main causes of the First World War?",
    "How does GPS know where I am?", "Why do leaves change colour in autumn?",
    "What is the largest desert in the world?", "How do noise-cancelling headphones work?",
    "Why does bread go stale?", "How many hearts does an octopus have?",
    "Who invented the printing press, and why was it important?",
    "What makes a rainbow appear?", "Why do we have leap years?",
    "How do vaccines get tested before they are approved?",
]


def build_instructions(rng: random.Random) -> list[dict]:
    """All instruction records, shuffled and numbered."""
    out: list[tuple[str, str]] = []

    def one_each(task, templates, subjects, **fixed):
        for x in subjects:
            out.append((task, rng.choice(templates).format(x=x, **fixed)))

    one_each("explain", EXPLAIN_T, EXPLAIN_X)
    for x in LIST_X:
        out.append(("list", rng.choice(LIST_T).format(n=rng.choice(LIST_N), x=x)))
    for templates, subjects in REWRITE.values():
        one_each("rewrite", templates, subjects)
    for templates, subjects in CLASSIFY.values():
        one_each("classify", templates, subjects)
    one_each("advise", ADVISE_T, ADVISE_X)
    for templates, subjects in WRITE.values():
        one_each("write", templates, subjects)
    one_each("summarise", SUMMARISE_T, SUMMARISE_X)
    for templates, pairs in [(COMPARE_T, COMPARE_X), (COMPARE_CHOICE_T, COMPARE_CHOICE_X)]:
        for a, b in pairs:
            out.append(("compare", rng.choice(templates).format(a=a, b=b)))
    one_each("define", DEFINE_T, DEFINE_X)
    for f, x in DEFINE_FIELD_X:
        out.append(("define", rng.choice(DEFINE_FIELD_T).format(f=f, x=x)))
    for templates, subjects in BRAINSTORM.values():
        for x in subjects:
            n = rng.choice(["five", "eight", "ten"])
            out.append(("brainstorm", rng.choice(templates).format(n=n, x=x)))
    for x in RESTYLE_FUN_X:  # two different styles for each sentence
        for t in rng.sample(RESTYLE_FUN_T, 2):
            out.append(("restyle", t.format(x=x)))
    one_each("restyle", RESTYLE_PLAIN_T, RESTYLE_PLAIN_X)
    for x in TRANSLATE_X:
        for lang in rng.sample(TRANSLATE_LANGS, 2):
            out.append(("translate", rng.choice(TRANSLATE_T).format(x=x, lang=lang)))
    for x, d in PLAN_X:
        d = ("an " if d.startswith("eight") else "a ") + d
        out.append(("plan", rng.choice(PLAN_T).format(x=x, d=d)))
    one_each("howto", HOWTO_T, HOWTO_X)
    out.extend(("question", q) for q in QUESTIONS)

    prompts = [p for _, p in out]
    assert len(set(prompts)) == len(prompts), "duplicate instruction prompt"
    rng.shuffle(out)
    return [{"id": f"inst-{i:04d}", "task": task, "prompt": prompt}
            for i, (task, prompt) in enumerate(out, 1)]


# --------------------------------------------------------------------------------------
# Math: each template draws numbers, computes the answer step by step with `eq`, and
# writes a worked solution. Every "a op b = c" in a solution is evaluated and checked.
# --------------------------------------------------------------------------------------

NAMES = [
    ("Ava", "f"), ("Liam", "m"), ("Sofia", "f"), ("Noah", "m"), ("Mei", "f"), ("Omar", "m"),
    ("Priya", "f"), ("Diego", "m"), ("Hannah", "f"), ("Kofi", "m"), ("Yuki", "f"),
    ("Mateo", "m"), ("Amara", "f"), ("Lucas", "m"), ("Fatima", "f"), ("Ethan", "m"),
    ("Ingrid", "f"), ("Ravi", "m"), ("Chloe", "f"), ("Tomás", "m"), ("Zara", "f"),
    ("Jamal", "m"), ("Elena", "f"), ("Kenji", "m"), ("Grace", "f"), ("Samir", "m"),
    ("Nadia", "f"), ("Oliver", "m"), ("Leila", "f"), ("Marcus", "m"), ("Aisha", "f"),
    ("Felix", "m"), ("Rosa", "f"), ("Daniel", "m"), ("Ananya", "f"), ("Victor", "m"),
    ("Keiko", "f"), ("Isaac", "m"), ("Lucia", "f"), ("Tariq", "m"),
]
PRONOUNS = {
    "m": {"he": "he", "He": "He", "him": "him", "his": "his", "His": "His", "self": "himself"},
    "f": {"he": "she", "He": "She", "him": "her", "his": "her", "His": "Her", "self": "herself"},
}
TIMES = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}
COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
_EXPR = re.compile(r"^\d+(?: [-+*/] \d+)+$")


def eq(expr: str) -> tuple[int, str]:
    """Evaluate an arithmetic step like ``"3 * 4"``; return (value, ``"3 * 4 = 12"``)."""
    assert _EXPR.match(expr), expr
    value = eval(expr, {"__builtins__": {}}, {})  # digits and + - * / only (checked above)
    assert value == int(value) and value >= 0, (expr, value)
    return int(value), f"{expr} = {int(value)}"


def people(rng: random.Random, k: int = 1) -> list[tuple[str, dict]]:
    return [(name, PRONOUNS[g]) for name, g in rng.sample(NAMES, k)]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def m_shopping(rng):
    shops = {
        "the bookshop": [("notebooks", 3, 7), ("pens", 1, 3), ("bookmarks", 1, 2),
                         ("folders", 2, 5), ("sketchbooks", 5, 9)],
        "the bakery": [("muffins", 2, 4), ("loaves of bread", 3, 6), ("croissants", 2, 4),
                       ("cookies", 1, 2), ("cinnamon rolls", 2, 5)],
        "the farmers' market": [("melons", 3, 5), ("jars of honey", 4, 8),
                                ("bags of apples", 3, 6), ("bunches of flowers", 5, 9),
                                ("baskets of strawberries", 3, 6)],
        "the hardware store": [("boxes of nails", 3, 8), ("paintbrushes", 4, 9),
                               ("rolls of tape", 2, 4), ("light bulbs", 2, 5),
                               ("pairs of gloves", 3, 7)],
    }
    shop = rng.choice(sorted(shops))
    (i1, lo1, hi1), (i2, lo2, hi2) = rng.sample(shops[shop], 2)
    (n, p), = people(rng)
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


def m_parent_age(rng):
    (a, pa), (b, pb) = people(rng, 2)
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
    q = (f"{a} is {TIMES[k]} as old as {pa['his']} {child} {b}. In {y} years, {a} will be "
         f"{later} years old. How old is {b} now?")
    sol = f"Right now {a} is {s1} years old. So {b} is {s2} years old."
    return q, v2, sol


def m_sibling_ages(rng):
    (a, _), (b, _) = people(rng, 2)
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


def m_journey(rng):
    vehicles = [("A train", 60, 120, 10), ("A bus", 40, 80, 5), ("A truck", 50, 90, 5),
                ("A cyclist", 12, 24, 2), ("A ferry", 20, 40, 5)]
    who, lo, hi, step = rng.choice(vehicles)
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


def m_work_rate(rng):
    jobs = [("pack", "boxes", 8, 20), ("fold", "paper cranes", 6, 15), ("grade", "essays", 4, 9),
            ("paint", "fence panels", 2, 6), ("sew", "cushion covers", 2, 5),
            ("label", "jars", 20, 40)]
    verb, noun, lo, hi = rng.choice(jobs)
    (n, p), = people(rng)
    r, h, done = rng.randint(lo, hi), rng.randint(2, 8), rng.randint(3, 60)
    total = done + r * h
    rem, s1 = eq(f"{total} - {done}")
    hrs, s2 = eq(f"{rem} / {r}")
    q = (f"{n} can {verb} {r} {noun} an hour. {p['He']} has to {verb} {total} {noun} and has "
         f"already done {done}. How many more hours will it take {p['him']} to finish?")
    sol = (f"{p['He']} still has {s1} {noun} to {verb}. At {r} an hour that takes "
           f"{s2} hours.")
    return q, hrs, sol


def m_sharing(rng):
    (n, p), = people(rng)
    item = rng.choice(["cookies", "cupcakes", "samosas", "dumplings", "brownies", "energy bars"])
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


def m_practice(rng):
    acts = [("practises the piano", "practising the piano"), ("goes jogging", "jogging"),
            ("reads", "reading"), ("studies Spanish", "studying Spanish"),
            ("does yoga", "doing yoga"), ("plays chess online", "playing chess online")]
    act, ger = rng.choice(acts)
    (n, p), = people(rng)
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


def m_fractions(rng):
    contexts = [
        ("A school has {n} students.", "walk to school", "take the bus",
         "The rest are driven by their parents. How many students are driven to school?"),
        ("An orchard has {n} trees.", "are apple trees", "are pear trees",
         "The rest are plum trees. How many plum trees are in the orchard?"),
        ("A library received {n} new books.", "are novels", "are cookbooks",
         "The rest are history books. How many history books did the library receive?"),
        ("A concert sold {n} tickets.", "were sold online", "were sold at the box office",
         "The rest were sold by phone. How many tickets were sold by phone?"),
    ]
    first = [(1, 2, "Half"), (1, 3, "One third"), (1, 4, "A quarter"), (1, 5, "One fifth"),
             (2, 5, "Two fifths"), (3, 4, "Three quarters")]
    second = [(1, 2, "half"), (1, 3, "one third"), (2, 3, "two thirds"), (1, 4, "a quarter"),
              (3, 4, "three quarters"), (2, 5, "two fifths"), (3, 5, "three fifths")]
    head, g1, g2, tail = rng.choice(contexts)
    a1, d1, w1 = rng.choice(first)
    a2, d2, w2 = rng.choice(second)
    n = d1 * d2 * rng.randint(max(1, 20 // (d1 * d2)), 600 // (d1 * d2))
    v1, s1 = eq(f"{n} * {a1} / {d1}")
    v2, s2 = eq(f"{n} - {v1}")
    v3, s3 = eq(f"{v2} * {a2} / {d2}")
    v4, s4 = eq(f"{v2} - {v3}")
    q = f"{head.format(n=n)} {w1} of them {g1}, and {w2} of the rest {g2}. {tail}"
    sol = (f"{w1} of {n} is {s1}, leaving {s2}. {w2.capitalize()} of those is {s3}. "
           f"So {s4} remain.")
    return q, v4, sol


def m_discount(rng):
    item = rng.choice(["jacket", "pair of boots", "backpack", "desk lamp", "blender",
                       "tennis racket", "suitcase"])
    (n, p), = people(rng)
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


def m_wages(rng):
    job = rng.choice(["at a café", "at a bookshop", "as a lifeguard", "at a garden centre",
                      "as a tutor", "at a cinema"])
    spend = rng.choice(["on rent", "on groceries", "on transport", "on bills"])
    (n, p), = people(rng)
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


def m_garden(rng):
    plant = rng.choice(["tomato plants", "lettuces", "sunflowers", "pepper plants",
                        "bean plants", "strawberry plants"])
    (n, p), = people(rng)
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


def m_savings_goal(rng):
    items = [("bicycle", 120, 400), ("guitar", 100, 350), ("games console", 250, 500),
             ("pair of running shoes", 60, 150), ("telescope", 150, 450), ("tablet", 200, 500)]
    item, lo, hi = rng.choice(items)
    (n, p), = people(rng)
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


def m_recipe(rng):
    recipes = [("cups of flour", "muffins"), ("eggs", "pancakes"), ("cups of milk", "pancakes"),
               ("tablespoons of sugar", "cookies"), ("cups of rice", "servings of fried rice"),
               ("onions", "bowls of soup")]
    ing, prod = rng.choice(recipes)
    (n, p), = people(rng)
    a, b, m = rng.randint(2, 5), rng.choice([6, 8, 10, 12, 15, 20, 24]), rng.randint(2, 5)
    c, have = b * m, a * m + rng.randint(1, 10)
    v1, s1 = eq(f"{c} / {b}")
    v2, s2 = eq(f"{a} * {v1}")
    v3, s3 = eq(f"{have} - {v2}")
    q = (f"A recipe uses {a} {ing} to make {b} {prod}. {n} wants to make {c} {prod} and has "
         f"{have} {ing}. How many {ing} will {p['he']} have left over?")
    sol = (f"{c} {prod} is {s1} batches. That needs {s2} {ing}, so {p['he']} has {s3} left.")
    return q, v3, sol


def m_collections(rng):
    obj = rng.choice(["marbles", "stickers", "trading cards", "seashells", "stamps",
                      "postcards"])
    (a, _), (b, _), (c, _) = people(rng, 3)
    nb, k = rng.randint(4, 30), rng.randint(2, 4)
    na, s1 = eq(f"{nb} * {k}")
    d = rng.randint(1, na - 1)
    nc, s2 = eq(f"{na} - {d}")
    tot, s3 = eq(f"{nb} + {na} + {nc}")
    q = (f"{b} has {nb} {obj}. {a} has {TIMES[k]} as many {obj} as {b}, and {c} has {d} fewer "
         f"than {a}. How many {obj} do the three of them have altogether?")
    sol = f"{a} has {s1} {obj} and {c} has {s2}. Together they have {s3} {obj}."
    return q, tot, sol


def m_pages(rng):
    (n, p), = people(rng)
    while True:
        pages, a, k, c = 10 * rng.randint(12, 48), rng.randint(10, 40), rng.randint(2, 3), \
            rng.randint(5, 40)
        if pages - a - k * a - c > 0:
            break
    v1, s1 = eq(f"{a} * {k}")
    v2, s2 = eq(f"{a} + {v1} + {c}")
    v3, s3 = eq(f"{pages} - {v2}")
    q = (f"{n} is reading a {pages}-page book. {p['He']} reads {a} pages on Monday, "
         f"{TIMES[k]} as many on Tuesday, and {c} pages on Wednesday. How many pages does "
         f"{p['he']} still have to read?")
    sol = (f"On Tuesday {p['he']} reads {s1} pages. Over the three days {p['he']} reads {s2} "
           f"pages, so {s3} pages are left.")
    return q, v3, sol


def m_fuel(rng):
    (n, p), = people(rng)
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


def m_tickets(rng):
    venue = rng.choice(["the zoo", "the science museum", "the aquarium", "the water park",
                        "the castle", "the botanical garden"])
    extra = rng.choice(["parking", "snacks", "a guidebook", "lunch"])
    (n, p), = people(rng)
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


def m_growth(rng):
    contexts = [
        ("A town has {p} residents. Over the next year its population grows by {r}%, and then "
         "{k} people move away. How many residents does the town have now?", 50, 450),
        ("A running club has {p} members. Membership grows by {r}% in the spring, but {k} "
         "members leave in the autumn. How many members does the club have at the end of the "
         "year?", 2, 12),
        ("A farm harvested {p} kilograms of potatoes last year. This year the harvest was {r}% "
         "larger, but {k} kilograms were lost to rot. How many kilograms were left to sell?",
         20, 200),
        ("A bakery sold {p} loaves of bread in March. In April it sold {r}% more, but {k} loaves "
         "were returned. How many loaves did it sell in April after the returns?", 10, 60),
    ]
    text, lo, hi = rng.choice(contexts)
    base, r = 20 * rng.randint(lo, hi), 5 * rng.randint(1, 10)
    g, s1 = eq(f"{base} * {r} / 100")
    total, s2 = eq(f"{base} + {g}")
    k = rng.randint(1, max(1, total // 10))
    final, s3 = eq(f"{total} - {k}")
    q = text.format(p=base, r=r, k=k)
    sol = f"The increase is {s1}, which gives {s2}. Taking away {k} leaves {s3}."
    return q, final, sol


def m_split_bill(rng):
    meal = rng.choice(["dinner", "lunch", "pizza", "brunch", "a curry", "sushi"])
    people_n, each, tip = rng.randint(2, 8), rng.randint(10, 60), rng.randint(5, 30)
    bill = people_n * each - tip
    if bill <= tip:
        bill += people_n * 10
    v1, s1 = eq(f"{bill} + {tip}")
    v2, s2 = eq(f"{v1} / {people_n}")
    q = (f"{COUNT_WORDS[people_n]} friends go out for {meal}. The bill comes to ${bill}, and "
         f"they add a ${tip} tip. If they split the total equally, how much does each friend "
         f"pay, in dollars?")
    sol = f"The total is {s1} dollars, so each friend pays {s2} dollars."
    return q, v2, sol


MATH_TEMPLATES = [m_shopping, m_parent_age, m_sibling_ages, m_journey, m_work_rate, m_sharing,
                  m_practice, m_fractions, m_discount, m_wages, m_garden, m_savings_goal,
                  m_recipe, m_collections, m_pages, m_fuel, m_tickets, m_growth, m_split_bill]


def build_math(rng: random.Random, per_template: int = MATH_PER_TEMPLATE) -> list[dict]:
    """``per_template`` distinct problems from each template, shuffled and numbered."""
    rows: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    for template in MATH_TEMPLATES:
        got = 0
        for _ in range(200 * per_template):
            q, ans, sol = template(rng)
            if q in seen:
                continue
            assert isinstance(ans, int) and ans >= 0, (template.__name__, q, ans)
            seen.add(q)
            rows.append((q, ans, f"{sol}\n#### {ans}"))
            got += 1
            if got == per_template:
                break
        assert got == per_template, f"{template.__name__}: only {got} distinct problems"
    rng.shuffle(rows)
    return [{"id": f"math-{i:04d}", "prompt": q, "answer": ans, "solution": sol}
            for i, (q, ans, sol) in enumerate(rows, 1)]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data",
                    help="output folder (default: the repository's data/)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = ap.parse_args(argv)
    inst = build_instructions(random.Random(args.seed))
    math = build_math(random.Random(args.seed + 1))
    write_jsonl(args.out / "instructions.jsonl", inst)
    write_jsonl(args.out / "math.jsonl", math)
    print(f"wrote {len(inst)} instructions and {len(math)} math problems to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
