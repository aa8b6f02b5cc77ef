"""Spoken-form normalisation of numbers (training targets say numbers the way speakers do)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from earshot_train.normalize import cardinal, normalize_numbers, ordinal, year  # noqa: E402


class CardinalTest(unittest.TestCase):
    def test_small_and_compound(self):
        self.assertEqual(cardinal(0), "zero")
        self.assertEqual(cardinal(13), "thirteen")
        self.assertEqual(cardinal(25), "twenty five")
        self.assertEqual(cardinal(100), "one hundred")
        self.assertEqual(cardinal(101), "one hundred one")
        self.assertEqual(cardinal(1234), "one thousand two hundred thirty four")
        self.assertEqual(cardinal(2000000), "two million")
        self.assertEqual(cardinal(1000001), "one million one")
        self.assertEqual(cardinal(-7), "minus seven")

    def test_ordinals(self):
        self.assertEqual(ordinal(1), "first")
        self.assertEqual(ordinal(2), "second")
        self.assertEqual(ordinal(3), "third")
        self.assertEqual(ordinal(12), "twelfth")
        self.assertEqual(ordinal(20), "twentieth")
        self.assertEqual(ordinal(22), "twenty second")
        self.assertEqual(ordinal(100), "one hundredth")

    def test_years(self):
        self.assertEqual(year(1984), "nineteen eighty four")
        self.assertEqual(year(1905), "nineteen oh five")
        self.assertEqual(year(1900), "nineteen hundred")
        self.assertEqual(year(2007), "two thousand seven")
        self.assertEqual(year(2024), "twenty twenty four")


class NormalizeTextTest(unittest.TestCase):
    def check(self, written, spoken):
        self.assertEqual(normalize_numbers(written), spoken)

    def test_plain_numbers_keep_punctuation_and_case(self):
        self.check("There were 1,234 people.", "There were one thousand two hundred thirty four people.")
        self.check("Version 2.5 is out!", "Version two point five is out!")

    def test_years_in_context(self):
        self.check("In 1984 it rained.", "In nineteen eighty four it rained.")
        self.check("Since 2019, sales grew.", "Since twenty nineteen, sales grew.")
        self.check("It has 2048 bytes.", "It has two thousand forty eight bytes.")
        self.check("The 1990s were loud.", "The nineteen nineties were loud.")

    def test_times(self):
        self.check("Meet at 3:30 p.m.", "Meet at three thirty p.m.")
        self.check("Wake me at 7:05.", "Wake me at seven oh five.")
        self.check("At 12:00 we eat.", "At twelve o'clock we eat.")
        self.check("Call at 9am today.", "Call at nine a.m. today.")

    def test_dates_and_ordinals(self):
        self.check("On May 5th, 2024 we left.", "On May fifth, twenty twenty four we left.")
        self.check("Due June 1, 2031.", "Due June first, twenty thirty one.")
        self.check("The 21st time.", "The twenty first time.")

    def test_money(self):
        self.check("It costs $5.50.", "It costs five dollars and fifty cents.")
        self.check("It costs $1.", "It costs one dollar.")
        self.check("A $3 million deal.", "A three million dollars deal.")
        self.check("Only £20 left.", "Only twenty pounds left.")
        self.check("Just $0.99 now.", "Just ninety nine cents now.")

    def test_percentages_fractions_ranges(self):
        self.check("About 45% agreed.", "About forty five percent agreed.")
        self.check("Up 3.5 percent.", "Up three point five percent.")
        self.check("Add 1/2 cup.", "Add one half cup.")
        self.check("Pages 10-12.", "Pages ten to twelve.")

    def test_codes_read_digit_by_digit(self):
        self.check("Dial 0427.", "Dial zero four two seven.")

    def test_no_digits_left(self):
        for s in ["In 1776, 56 men signed.", "Room 12 is at 221 Baker St.", "It was -5 degrees at 6 pm."]:
            self.assertNotRegex(normalize_numbers(s), r"\d", s)


if __name__ == "__main__":
    unittest.main()
