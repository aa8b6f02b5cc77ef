"""Seeded dictation-style phrases: commands, reminders, times, dates, addresses, quantities, questions.

Book and speech text rarely contains what people dictate to a browser; these templates fill that gap. They are
written with digits and symbols and pass through the same normaliser as every other source, so numbers come out as
spoken words ("Set a timer for 25 minutes." -> "Set a timer for twenty five minutes.").
"""
import random
from typing import Iterator, List

FIRST_NAMES = ["Anna", "Ben", "Carlos", "Diana", "Ethan", "Fatima", "George", "Hannah", "Ivan", "Julia", "Kevin",
               "Laura", "Mohammed", "Nina", "Oliver", "Priya", "Quinn", "Rachel", "Samuel", "Tara", "Umar",
               "Victoria", "William", "Xavier", "Yuki", "Zoe", "Mom", "Dad", "Grandma", "Alex", "Chris", "Jordan",
               "Maria", "David", "Sophie", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Mia", "James", "Amelia",
               "Daniel", "Grace", "Henry", "Isabel", "Jack", "Katie", "Leo", "Megan", "Nathan", "Paul", "Rosa"]
SURNAMES = ["Smith", "Johnson", "Garcia", "Brown", "Lee", "Patel", "Nguyen", "Kim", "Martin", "Walker", "Young",
            "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell",
            "Roberts", "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart"]
STREETS = ["Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Church", "High",
           "Mill", "River", "Sunset", "Highland", "Franklin", "Jefferson", "Lincoln", "Spring", "Forest", "Meadow"]
STREET_TYPES = ["Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Court", "Place", "Way"]
CITIES = ["Boston", "Denver", "Seattle", "Austin", "Chicago", "Portland", "Atlanta", "Phoenix", "Dallas", "Miami",
          "London", "Manchester", "Edinburgh", "Dublin", "Toronto", "Vancouver", "Sydney", "Melbourne", "Auckland",
          "Springfield", "Oakland", "Houston", "Nashville", "Detroit", "Baltimore", "Glasgow", "Leeds", "Bristol",
          "Ottawa", "Brisbane", "Cardiff", "Belfast", "San Diego", "New York", "Los Angeles", "San Francisco"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WHEN = ["tomorrow", "today", "tonight", "this afternoon", "this evening", "next week", "on Monday", "on Friday",
        "after lunch", "before the meeting", "in the morning", "this weekend", "next month", "later"]
TASKS = ["call the dentist", "buy milk", "pick up the kids", "send the report", "water the plants",
         "book a table for dinner", "pay the electricity bill", "renew my passport", "take out the trash",
         "check the oven", "email the landlord", "feed the cat", "walk the dog", "back up my laptop",
         "return the library books", "charge my phone", "order more coffee", "update the spreadsheet",
         "cancel the subscription", "review the slides", "call the bank", "pack the lunch boxes",
         "move the car", "lock the front door", "print the tickets", "text the plumber", "stretch"]
ITEMS = ["eggs", "apples", "bananas", "bread", "tomatoes", "onions", "batteries", "light bulbs", "paper towels",
         "bottles of water", "cans of soup", "potatoes", "lemons", "candles", "envelopes", "pens", "carrots"]
UNITS = ["minutes", "seconds", "hours", "days", "weeks"]
APPS = ["music", "the radio", "the podcast", "my playlist", "the news", "the timer", "the alarm", "the lights",
        "the heating", "the fan", "the television", "the camera", "the calendar", "notes", "the map"]
PLACES = ["the airport", "the train station", "the nearest pharmacy", "the library", "the office", "the hospital",
          "the museum", "the gym", "the grocery store", "the post office", "the beach", "downtown", "the stadium"]
WEATHER_Q = ["What's the weather like in {city}?", "Will it rain in {city} {when}?", "How cold is it in {city}?",
             "Is it going to snow {when}?", "Do I need an umbrella {when}?"]
QUESTIONS = ["What time is it in {city}?", "How far is {place} from here?", "How long does it take to get to {place}?",
             "Who called me {when}?", "When is my next meeting?", "What's on my calendar {when}?",
             "Can you read my last message?", "How do you spell {word}?", "What does {word} mean?",
             "Is {place} open on {day}?", "Where did I park the car?", "What's {a} times {b}?",
             "What's {a} plus {b}?", "How many {unit} are in a year?", "Did {name} reply to my email?",
             "What's the score of the game?", "Convert {money} to yen.", "Is {name} coming {when}?",
             "Why is the sky blue?", "How do I get to {place}?", "Are there any messages from {name}?"]
WORDS = ["necessary", "rhythm", "separate", "definitely", "accommodate", "colonel", "queue", "algorithm",
         "restaurant", "Wednesday", "February", "pronunciation", "conscience", "liaison", "mischievous"]


def _time(rng: random.Random) -> str:
    style = rng.random()
    hour = rng.randint(1, 12)
    if style < 0.4:
        return f"{hour}:{rng.choice([0, 5, 10, 15, 20, 30, 40, 45, 50, rng.randint(1, 59)]):02d}" + \
            rng.choice(["", " a.m.", " p.m.", " AM", " PM"])
    if style < 0.6:
        return f"{hour} {rng.choice(['a.m.', 'p.m.'])}"
    if style < 0.8:
        return rng.choice([f"{hour} o'clock", f"half past {hour}", f"quarter past {hour}", f"quarter to {hour}",
                           "noon", "midnight"])
    return f"{rng.randint(0, 23)}:{rng.choice([0, 15, 30, 45]):02d}"


def _date(rng: random.Random) -> str:
    month, day = rng.choice(MONTHS), rng.randint(1, 28)
    style = rng.random()
    if style < 0.35:
        return f"{month} {day}"
    if style < 0.6:
        return f"{month} {day}, {rng.randint(1950, 2035)}"
    if style < 0.8:
        return f"the {day}{_suffix(day)} of {month}"
    return f"{rng.choice(DAYS)}, {month} {day}{_suffix(day)}"


def _suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _money(rng: random.Random) -> str:
    symbol = rng.choice(["$", "$", "£", "€"])
    if rng.random() < 0.5:
        return f"{symbol}{rng.randint(1, 500)}"
    return f"{symbol}{rng.randint(0, 99)}.{rng.randint(1, 99):02d}"


def _phone(rng: random.Random) -> str:
    # Written digit by digit so that each digit is read on its own, as phone numbers are.
    groups = [f"{rng.randint(200, 999)}", f"{rng.randint(200, 999)}", f"{rng.randint(0, 9999):04d}"]
    return ", ".join(" ".join(group) for group in groups)


def _address(rng: random.Random) -> str:
    number = rng.choice([rng.randint(1, 99), rng.randint(100, 999), rng.randint(1000, 9999)])
    street = f"{rng.choice(STREETS)} {rng.choice(STREET_TYPES)}"
    tail = rng.choice(["", f", {rng.choice(CITIES)}", f", apartment {rng.randint(1, 40)}",
                       f", {rng.choice(CITIES)} {rng.randint(10000, 99999):05d}"])
    if tail.endswith(tuple("0123456789")) and tail[-6] == " ":
        tail = tail[:-5] + " " + " ".join(tail[-5:])  # postcodes are read digit by digit
    return f"{number} {street}{tail}"


def _fill(rng: random.Random, template: str) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return template.format(
        name=rng.choice(FIRST_NAMES), full=f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        city=rng.choice(CITIES), when=rng.choice(WHEN), task=rng.choice(TASKS), time=_time(rng), date=_date(rng),
        day=rng.choice(DAYS), item=rng.choice(ITEMS), n=rng.randint(2, 24), unit=rng.choice(UNITS),
        big=rng.choice([rng.randint(100, 999), rng.randint(1000, 99999), rng.randint(100000, 5000000)]),
        pct=rng.randint(1, 100), money=_money(rng), phone=_phone(rng), address=_address(rng),
        app=rng.choice(APPS), place=rng.choice(PLACES), word=rng.choice(WORDS), a=a, b=b,
        floor=rng.randint(1, 40), room=rng.randint(100, 999), year=rng.randint(1900, 2035),
        temp=rng.randint(55, 85), vol=rng.randint(1, 10), minutes=rng.choice([5, 10, 15, 20, 25, 30, 45, 90]))


COMMANDS = ["Remind me to {task} {when}.", "Remind me to {task} at {time}.", "Remind me on {date} to {task}.",
            "Set a timer for {minutes} minutes.", "Set an alarm for {time}.", "Wake me up at {time} {when}.",
            "Add {n} {item} to my shopping list.", "Add {item} to the list.", "Call {full}.", "Call {name} back.",
            "Send a message to {name} saying I'll be there at {time}.", "Text {name} that I'm running late.",
            "Schedule a meeting with {full} on {date} at {time}.", "Cancel my {time} appointment.",
            "Play {app}.", "Turn on {app}.", "Turn off {app}.", "Pause {app}.", "Stop {app}.",
            "Set the volume to {vol}.", "Set the thermostat to {temp} degrees.", "Open {app}.",
            "Navigate to {address}.", "Take me to {place}.", "Find a coffee shop near {place}.",
            "New paragraph.", "Delete the last sentence.", "Undo that.", "Scroll down.", "Go back.", "Next page.",
            "Read that again, please.", "Start a new note.", "Save this note as {word}.",
            "Move the meeting to {day} at {time}.", "Book a table for {n} at {time}.",
            "Transfer {money} to {name}.", "Split the bill {n} ways.", "Convert {big} meters to miles.",
            "Put {item} on my list for {day}."]
STATEMENTS = ["My address is {address}.", "I live at {address}.", "Please deliver it to {address}.",
              "The meeting is on {date} at {time}.", "The train leaves at {time}.",
              "My flight is on {date}.", "The deadline is {date}.", "I was born on {date}, {year}.",
              "My number is {phone}.", "You can reach me at {phone}.", "The total comes to {money}.",
              "It costs {money}.", "The rent went up by {pct}%.", "Sales grew {pct}% last year.",
              "There were {big} people at the concert.", "The population is about {big}.",
              "The office is on floor {floor}, room {room}.", "I'll see you at {time}.",
              "{name} said the package will arrive {when}.", "Let's meet at {place} at {time}.",
              "We need {n} more chairs for the party.", "Dinner is at {time} on {day}.",
              "The store closes at {time}.", "It happened in {year}.", "Back in {year}, everything was different.",
              "The score was {a} to {b}.", "Chapter {n} starts on page {big}.", "Please call me back after {time}.",
              "I'm at {address}, the blue house on the corner.", "The temperature dropped to {temp} degrees.",
              "Dear {name}, thank you for your letter.", "Hi {name}, are we still on for {when}?",
              "Thanks, {name}. See you {when}.", "Sorry, I can't make it {when}.", "I'll be there in {n} minutes."]
TEMPLATES = COMMANDS + STATEMENTS + QUESTIONS + WEATHER_Q


def dictation_phrases(count: int, seed: int) -> Iterator[str]:
    """`count` raw (unnormalised) dictation phrases, reproducible from `seed`."""
    rng = random.Random(seed)
    for _ in range(count):
        yield _fill(rng, rng.choice(TEMPLATES)).replace("..", ".")


def number_phrases(count: int, seed: int) -> Iterator[str]:
    """Bare numbers and digit strings as people say them (codes, counts, years), for digit-heavy speech."""
    rng = random.Random(seed)
    forms: List = [
        lambda: " ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(3, 10))),
        lambda: f"{rng.randint(0, 9)}, {rng.randint(0, 9)}, {rng.randint(0, 9)}.",
        lambda: f"The code is {' '.join(str(rng.randint(0, 9)) for _ in range(rng.randint(4, 6)))}.",
        lambda: f"{rng.randint(1, 9999)}.",
        lambda: f"Number {rng.randint(1, 500)}.",
        lambda: f"{rng.randint(1, 99)} {rng.choice(['plus', 'minus', 'times'])} {rng.randint(1, 99)}.",
        lambda: f"Page {rng.randint(1, 900)}.",
        lambda: f"In {rng.randint(1800, 2030)}.",
        lambda: f"{rng.randint(1, 100)}%.",
    ]
    for _ in range(count):
        yield rng.choice(forms)()


# One-word answers, commands and dictation words: what a short clip says when it is not a sentence.
SHORT_WORDS = ["Yes", "No", "Okay", "Stop", "Next", "Back", "Cancel", "Pause", "Play", "Hello", "Thanks", "Help",
               "Done", "Repeat", "Louder", "Quieter", "Up", "Down", "Left", "Right", "On", "Off", "Start", "Go",
               "Wait", "Maybe", "Sure", "Please", "Sorry", "Again", "Enter", "Delete", "Undo", "Send", "Save", "Open",
               "Close", "Call", "Skip", "Shuffle", "Mute", "Faster", "Slower", "Higher", "Lower", "Good", "Great",
               "Fine", "Right now", "Never", "Always", "Today", "Tomorrow", "Yesterday", "Morning", "Evening",
               "Coffee", "Water", "Music", "Home", "Work", "Red", "Blue", "Green", "Black", "White", "Hi", "Bye",
               "Goodbye", "Thank you", "Excuse me", "Of course", "Not now", "Why", "How", "What", "Where", "When",
               "Who", "Correct", "Wrong", "True", "False", "Ready", "Finished", "Select", "Copy", "Paste", "Search",
               "Comma", "Period", "Question mark", "New line", "Tea", "Dinner", "Lunch", "Breakfast", "Alarm"]


def short_phrases(count: int, seed: int) -> Iterator[str]:
    """Utterances of one to three words: answers, commands, a few digits or a number with a word, as people say
    them into a microphone one at a time. (A lone digit is left out: the dev set's spoken digits say exactly
    that, and no dev transcript may be training text.)"""
    rng = random.Random(seed)

    def digits(n: int) -> str:
        return ", ".join(str(rng.randint(0, 9)) for _ in range(n))

    forms: List = [
        lambda: rng.choice(SHORT_WORDS) + ".",
        lambda: rng.choice(SHORT_WORDS) + ".",
        lambda: digits(2) + ".",
        lambda: digits(3) + ".",
        lambda: f"{rng.randint(10, 99)}.",
        lambda: f"{rng.choice(['Number', 'Line', 'Page', 'Room', 'Gate', 'Channel', 'Level', 'Step'])} "
                f"{rng.randint(0, 20)}.",
        lambda: f"{rng.randint(0, 9)} {rng.choice(['please', 'times', 'more', 'left', 'minutes', 'percent'])}.",
        lambda: rng.choice(FIRST_NAMES) + ".",
        lambda: f"{rng.choice(DAYS)}.",
    ]
    for _ in range(count):
        yield rng.choice(forms)()
