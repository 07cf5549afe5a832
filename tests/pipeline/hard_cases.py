# ruff: noqa: E501  (a data table: one case per line reads best)
"""Hand-written sentence-boundary hard cases, shared by tests and ``bench/segmenter.py``.

Each case is ``(category, text, expected sentences)``; sentences are compared
whitespace-stripped. Conventions encoded here: a list item, a heading and a
paragraph are each their own sentence; closing quotes/brackets stay with the
sentence they close; a quote followed by a lowercase speech tag is one sentence.
"""

from __future__ import annotations

from typing import Final

HardCase = tuple[str, str, list[str]]

HARD_CASES: Final[list[HardCase]] = [
    # --- plain prose and short sentences
    ("prose", "Hi. How are you?", ["Hi.", "How are you?"]),
    ("prose", "Yes. No. Maybe.", ["Yes.", "No.", "Maybe."]),
    ("prose", "The cat sat down. It was tired.", ["The cat sat down.", "It was tired."]),
    ("prose", "Sure! Here is the answer.", ["Sure!", "Here is the answer."]),
    ("prose", "Ok. Let me think.", ["Ok.", "Let me think."]),
    # --- titles and abbreviations
    ("abbrev", "Dr. Smith is here. He is late.", ["Dr. Smith is here.", "He is late."]),
    ("abbrev", "Mr. and Mrs. Jones arrived.", ["Mr. and Mrs. Jones arrived."]),
    ("abbrev", "I met Prof. Adams at St. Mary's church.", ["I met Prof. Adams at St. Mary's church."]),
    ("abbrev", "Ms. Lee called. She left a message.", ["Ms. Lee called.", "She left a message."]),
    ("abbrev", "Use fruit, e.g. apples or pears.", ["Use fruit, e.g. apples or pears."]),
    ("abbrev", "One kind, i.e. the red one, is fine.", ["One kind, i.e. the red one, is fine."]),
    ("abbrev", "Bring pens, paper, etc. to class.", ["Bring pens, paper, etc. to class."]),
    ("abbrev", "We need pens, paper, etc. The shop is open.", ["We need pens, paper, etc.", "The shop is open."]),
    ("abbrev", "It was Lakers vs. Celtics tonight.", ["It was Lakers vs. Celtics tonight."]),
    ("abbrev", "See Fig. 3 for details.", ["See Fig. 3 for details."]),
    ("abbrev", "Read No. 5 first. Then read the rest.", ["Read No. 5 first.", "Then read the rest."]),
    ("abbrev", "Acme Inc. makes tools. They sell well.", ["Acme Inc. makes tools.", "They sell well."]),
    ("abbrev", "E.g. this one works.", ["E.g. this one works."]),
    ("abbrev", "The rate is approx. 5 percent.", ["The rate is approx. 5 percent."]),
    # --- abbreviations at the end of a sentence
    ("abbrev-end", "I live in the U.S. How about you?", ["I live in the U.S.", "How about you?"]),
    ("abbrev-end", "He moved to the U.K. It rains there.", ["He moved to the U.K.", "It rains there."]),
    ("abbrev-end", "The U.S. economy grew.", ["The U.S. economy grew."]),
    ("abbrev-end", "She works at Acme Corp. The pay is good.", ["She works at Acme Corp.", "The pay is good."]),
    ("abbrev-end", "We saw lions, tigers, etc. I loved it.", ["We saw lions, tigers, etc.", "I loved it."]),
    # --- times
    ("time", "Meet me at 5 p.m. on Friday.", ["Meet me at 5 p.m. on Friday."]),
    ("time", "The show starts at 8 p.m. Don't be late.", ["The show starts at 8 p.m.", "Don't be late."]),
    ("time", "It opens at 9 a.m. and closes at noon.", ["It opens at 9 a.m. and closes at noon."]),
    ("time", "The meeting is at 10:30. Bring notes.", ["The meeting is at 10:30.", "Bring notes."]),
    # --- initials
    ("initials", "J. K. Rowling wrote it.", ["J. K. Rowling wrote it."]),
    ("initials", "George W. Bush spoke today.", ["George W. Bush spoke today."]),
    ("initials", "The author is J. R. R. Tolkien. He was British.", ["The author is J. R. R. Tolkien.", "He was British."]),
    # --- numbers, decimals, versions, units
    ("numbers", "Pi is about 3.14 in short.", ["Pi is about 3.14 in short."]),
    ("numbers", "It costs $4.99 today. Buy it.", ["It costs $4.99 today.", "Buy it."]),
    ("numbers", "Upgrade to v2.0.1 now. It fixes bugs.", ["Upgrade to v2.0.1 now.", "It fixes bugs."]),
    ("numbers", "Python 3.11 is fast. Use it.", ["Python 3.11 is fast.", "Use it."]),
    ("numbers", "It weighs 5 kg. That is heavy.", ["It weighs 5 kg.", "That is heavy."]),
    ("numbers", "The temperature was 21.5 °C. It felt warm.", ["The temperature was 21.5 °C.", "It felt warm."]),
    ("numbers", "Sales grew 12.5% in 2023. Profits fell.", ["Sales grew 12.5% in 2023.", "Profits fell."]),
    ("numbers", "There were 1,000 people. Most stayed.", ["There were 1,000 people.", "Most stayed."]),
    ("numbers", "It happened in 1999. Nobody noticed.", ["It happened in 1999.", "Nobody noticed."]),
    # --- ellipses
    ("ellipsis", "I was thinking... Maybe not.", ["I was thinking...", "Maybe not."]),
    ("ellipsis", "Well... it depends.", ["Well... it depends."]),
    ("ellipsis", "Wait… What happened?", ["Wait…", "What happened?"]),
    ("ellipsis", "And then... nothing at all.", ["And then... nothing at all."]),
    # --- ?! and friends
    ("punct", "Really?! That is great.", ["Really?!", "That is great."]),
    ("punct", "What?? No way!!! Fine.", ["What??", "No way!!!", "Fine."]),
    ("punct", "Is it done? Yes! Good.", ["Is it done?", "Yes!", "Good."]),
    # --- quotes and brackets
    ("quotes", 'He said "go home." Then he left.', ['He said "go home."', "Then he left."]),
    ("quotes", '"It is the end." she said.', ['"It is the end." she said.']),
    ("quotes", "“Stop!” he shouted. We stopped.", ["“Stop!” he shouted.", "We stopped."]),
    ("quotes", "“Run.” She ran.", ["“Run.”", "She ran."]),
    ("quotes", "(This is an aside.) Back to the topic.", ["(This is an aside.)", "Back to the topic."]),
    ("quotes", "The result (see above) holds. We are done.", ["The result (see above) holds.", "We are done."]),
    ("quotes", "She asked, 'Why not?' Nobody answered.", ["She asked, 'Why not?'", "Nobody answered."]),
    ("quotes", "It was big [citation needed]. Really.", ["It was big [citation needed].", "Really."]),
    # --- URLs and e-mail
    ("url", "Visit https://example.com/docs/v1.2/index.html for more. It helps.", ["Visit https://example.com/docs/v1.2/index.html for more.", "It helps."]),
    ("url", "See www.example.org. It has docs.", ["See www.example.org.", "It has docs."]),
    ("url", "Mail john.doe@example.com today. He replies fast.", ["Mail john.doe@example.com today.", "He replies fast."]),
    ("url", "Is it at https://x.io/a?b=1&c=2? Yes.", ["Is it at https://x.io/a?b=1&c=2?", "Yes."]),
    ("url", "The file is config.yaml. Edit it.", ["The file is config.yaml.", "Edit it."]),
    # --- lists
    ("list", "Steps:\n1. Open the box.\n2. Take it out.", ["Steps:", "1. Open the box.", "2. Take it out."]),
    ("list", "You need:\n- flour\n- sugar\n- eggs", ["You need:", "- flour", "- sugar", "- eggs"]),
    ("list", "1. First\n2. Second\n3. Third", ["1. First", "2. Second", "3. Third"]),
    ("list", "* Fast. Really fast.\n* Cheap.", ["* Fast.", "Really fast.", "* Cheap."]),
    ("list", "Options:\n a. red\n b. blue", ["Options:", "a. red", "b. blue"]),
    ("list", "- apples\n- pears\nThat is all.", ["- apples", "- pears", "That is all."]),
    # --- paragraphs and headings
    ("layout", "First paragraph without a period\n\nSecond paragraph.", ["First paragraph without a period", "Second paragraph."]),
    ("layout", "# Introduction\nThis is the text.", ["# Introduction", "This is the text."]),
    ("layout", "## Step 1: Install\nRun the installer.", ["## Step 1: Install", "Run the installer."]),
    ("layout", "This line is hard\nwrapped in the middle. Next.", ["This line is hard\nwrapped in the middle.", "Next."]),
    ("layout", "Title\n\nBody text here. More text.", ["Title", "Body text here.", "More text."]),
    # --- markdown emphasis
    ("markdown", "**Note.** This matters.", ["**Note.**", "This matters."]),
    ("markdown", "Use the *fast* mode. It is *much* better.", ["Use the *fast* mode.", "It is *much* better."]),
    ("markdown", "Call `foo.bar()` first. Then wait.", ["Call `foo.bar()` first.", "Then wait."]),
]  # fmt: skip
"""At least 60 cases, by category."""
