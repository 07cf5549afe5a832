# ruff: noqa: E501  (a data table: one case per line reads best)
"""Sentence-boundary cases written from the failure classes of issue 15.

Each class is a way segmenters fail that matters for speech; the cases were
written for this project from the class descriptions (not copied from other
projects' test sets). Each case is ``(text, expected sentences)``; sentences
are compared whitespace-stripped. ``tests/pipeline/test_sentence_boundaries.py``
runs every case in batch and streamed in small chunks.
"""

from __future__ import annotations

from typing import Final

Case = tuple[str, list[str]]

BOUNDARY_CASES: Final[dict[str, list[Case]]] = {
    # An abbreviation that ends a sentence: the next sentence must still start.
    "abbreviation_then_sentence": [
        ("The meeting ended at 4 p.m. Everyone went home.", ["The meeting ended at 4 p.m.", "Everyone went home."]),
        ("She moved to the U.K. Then she studied law.", ["She moved to the U.K.", "Then she studied law."]),
        ("Tessa has a Ph.D. She teaches chemistry.", ["Tessa has a Ph.D.", "She teaches chemistry."]),
        ("The store opens at 9 a.m. Customers line up early.", ["The store opens at 9 a.m.", "Customers line up early."]),
        ("He works for Globex Inc. His office is downtown.", ["He works for Globex Inc.", "His office is downtown."]),
        ("We packed tents, stoves, etc. Nothing was forgotten.", ["We packed tents, stoves, etc.", "Nothing was forgotten."]),
        ("My cousin lives in the U.S. We visit every summer.", ["My cousin lives in the U.S.", "We visit every summer."]),
        ("The contract was signed by Acme Ltd. Work starts Monday.", ["The contract was signed by Acme Ltd.", "Work starts Monday."]),
        ("The statue dates from 200 B.C. Visitors love it.", ["The statue dates from 200 B.C.", "Visitors love it."]),
        ("Her father is a Sr. Engineer at the plant. He likes it.", ["Her father is a Sr. Engineer at the plant.", "He likes it."]),
        ("Call before 5 p.m. After that the line is closed.", ["Call before 5 p.m.", "After that the line is closed."]),
        ("I grew up in Washington, D.C. It was a busy place.", ["I grew up in Washington, D.C.", "It was a busy place."]),
        ("The talk is at 6 p.m. Dinner follows.", ["The talk is at 6 p.m.", "Dinner follows."]),
        ("They sell shoes, bags, belts, etc. Prices are fair.", ["They sell shoes, bags, belts, etc.", "Prices are fair."]),
        ("He finally earned his M.D. Patients trust him.", ["He finally earned his M.D.", "Patients trust him."]),
        ("The parcel went to the E.U. It arrived late.", ["The parcel went to the E.U.", "It arrived late."]),
    ],
    # An abbreviation followed by a name, a number or another abbreviation: no cut.
    "abbreviation_then_name": [
        ("In 300 B.C. Rome was still small.", ["In 300 B.C. Rome was still small."]),
        ("Dr. Okafor will see you now.", ["Dr. Okafor will see you now."]),
        ("We met Prof. Lindqvist at the station.", ["We met Prof. Lindqvist at the station."]),
        ("The U.S. Navy sent two ships.", ["The U.S. Navy sent two ships."]),
        ("Mrs. Chen and Mr. Patel arrived together.", ["Mrs. Chen and Mr. Patel arrived together."]),
        ("It was built around A.D. 1200 by monks.", ["It was built around A.D. 1200 by monks."]),
        ("Acme Co. Ltd. makes springs.", ["Acme Co. Ltd. makes springs."]),
        ("Our guide was J. R. Hartley of Leeds.", ["Our guide was J. R. Hartley of Leeds."]),
        ("The case is Brown v. Board of Education.", ["The case is Brown v. Board of Education."]),
        ("Turn to p. 12 and read it aloud.", ["Turn to p. 12 and read it aloud."]),
        ("The hotel is on St. James Street near the park.", ["The hotel is on St. James Street near the park."]),
        ("Call ext. 204 for support.", ["Call ext. 204 for support."]),
        ("They live at Apt. 4C on the third floor.", ["They live at Apt. 4C on the third floor."]),
        ("See Fig. 7 and Eq. 3 for the proof.", ["See Fig. 7 and Eq. 3 for the proof."]),
        ("The ship sailed on Jan. 14 from Lisbon.", ["The ship sailed on Jan. 14 from Lisbon."]),
        ("Sgt. Pepper played that night.", ["Sgt. Pepper played that night."]),
        ("The report of the U.N. Security Council was long.", ["The report of the U.N. Security Council was long."]),
        ("Louis XIV met Gen. Turenne at dawn.", ["Louis XIV met Gen. Turenne at dawn."]),
    ],
    # Enumerations written inline: one segment per item, never a lone marker.
    "inline_enumeration": [
        ("Steps: 1. Boil water. 2. Add tea.", ["Steps: 1. Boil water.", "2. Add tea."]),
        ("a. first b. second", ["a. first", "b. second"]),
        ("1) foo 2) bar", ["1) foo", "2) bar"]),
        ("You need three things: 1) A map 2) A compass 3) Water", ["You need three things: 1) A map", "2) A compass", "3) Water"]),
        ("1. Preheat the oven 2. Mix the flour 3. Bake for an hour", ["1. Preheat the oven", "2. Mix the flour", "3. Bake for an hour"]),
        ("A. Red apples B. Green pears", ["A. Red apples", "B. Green pears"]),
        ("Choose one: a) Tea b) Coffee c) Juice", ["Choose one: a) Tea", "b) Coffee", "c) Juice"]),
        ("• 1. Open the lid • 2. Pour the milk", ["• 1. Open the lid", "• 2. Pour the milk"]),
        ("Rules. 1. Be kind. 2. Be quick. 3. Have fun.", ["Rules.", "1. Be kind.", "2. Be quick.", "3. Have fun."]),
        ("Pick 1) the red one or 2) the blue one.", ["Pick 1) the red one or 2) the blue one."]),
        ("Options like a. fast, b. cheap and c. good rarely meet.", ["Options like a. fast, b. cheap and c. good rarely meet."]),
        ("Step 1 was easy and step 2 was hard.", ["Step 1 was easy and step 2 was hard."]),
        ("Agenda: 1.) Welcome 2.) Budget 3.) Questions", ["Agenda: 1.) Welcome", "2.) Budget", "3.) Questions"]),
        ("There were 2. The rest left early.", ["There were 2.", "The rest left early."]),
        ("Read chapters 1 and 2. Then write a summary.", ["Read chapters 1 and 2.", "Then write a summary."]),
        ("Plan:\n1. Wake up\n2. Run", ["Plan:", "1. Wake up", "2. Run"]),
    ],
    # Spaced ellipses and repeated marks: no segment of punctuation alone.
    "ellipsis_and_repeated_marks": [
        ("Wait . . . what?", ["Wait . . . what?"]),
        ("Really ? ? ? Then go.", ["Really ? ? ?", "Then go."]),
        ("No ! ! ! Stop it.", ["No ! ! !", "Stop it."]),
        ("Well . . . I suppose so.", ["Well . . . I suppose so."]),
        ("He paused . . . and smiled.", ["He paused . . . and smiled."]),
        ("The end . . . . A new day began.", ["The end . . . .", "A new day began."]),
        ("She said . . . nothing. We waited.", ["She said . . . nothing.", "We waited."]),
        ("Hmm... Let me think.", ["Hmm...", "Let me think."]),
        ("What?!?! You did it?!", ["What?!?!", "You did it?!"]),
        ("Go!!! Now!!!", ["Go!!!", "Now!!!"]),
        ("The quote was \"to be [...] free\" and nothing more.", ["The quote was \"to be [...] free\" and nothing more."]),
        ("He wrote (...) and then stopped.", ["He wrote (...) and then stopped."]),
        ("Is it true ?! Tell me.", ["Is it true ?!", "Tell me."]),
        ("Hello . . .", ["Hello . . ."]),
        ("Done. . . .", ["Done. . . ."]),
        ("It ended. . . . The rest is lost.", ["It ended.", ". . . The rest is lost."]),
    ],
    # A citation or footnote mark after the period must not hide the boundary.
    "citation_after_period": [
        ("It was founded in 1990.[3] The town grew.", ["It was founded in 1990.[3]", "The town grew."]),
        ("The bridge is 2 km long.[12] It opened in 1932.", ["The bridge is 2 km long.[12]", "It opened in 1932."]),
        ("Rain is common.[1][2] Snow is rare.", ["Rain is common.[1][2]", "Snow is rare."]),
        ("The claim is disputed.[^4] Others agree.", ["The claim is disputed.[^4]", "Others agree."]),
        ("Bees dance to talk.[7] Ants use scent.[8] Birds sing.", ["Bees dance to talk.[7]", "Ants use scent.[8]", "Birds sing."]),
        ("He won in 2004 [5]. Nobody expected it.", ["He won in 2004 [5].", "Nobody expected it."]),
        ("See the notes.[3] they explain it.", ["See the notes.[3] they explain it."]),
        ("The river floods.\u201d[9] Farmers plan for it.", ["The river floods.\u201d[9]", "Farmers plan for it."]),
        ("Wolves returned in 1995.[10] Elk numbers fell.", ["Wolves returned in 1995.[10]", "Elk numbers fell."]),
        ("It is the tallest tower.[2] Tourists climb it daily.", ["It is the tallest tower.[2]", "Tourists climb it daily."]),
        ("Copper conducts well.[6]\nSilver is better.", ["Copper conducts well.[6]", "Silver is better."]),
        ("Tea came from China.[1] Coffee came from Ethiopia.[2]", ["Tea came from China.[1]", "Coffee came from Ethiopia.[2]"]),
    ],
    # Runs of abbreviations, often inside parentheses: never one-word segments.
    "abbreviation_runs": [
        ("(see Proc. Natl. Acad. Sci. USA for details)", ["(see Proc. Natl. Acad. Sci. USA for details)"]),
        ("It appeared in Phys. Rev. Lett. last year.", ["It appeared in Phys. Rev. Lett. last year."]),
        ("The data (Univ. Calif. Press) are old.", ["The data (Univ. Calif. Press) are old."]),
        ("(cf. Smith et al. 2001, Fig. 3)", ["(cf. Smith et al. 2001, Fig. 3)"]),
        ("Published by the Amer. Math. Soc. in Providence.", ["Published by the Amer. Math. Soc. in Providence."]),
        ("(Vol. 3, No. 2, pp. 11-19)", ["(Vol. 3, No. 2, pp. 11-19)"]),
        ("See J. Biol. Chem. for the full paper.", ["See J. Biol. Chem. for the full paper."]),
        ("The trial (Intl. Med. Assn.) ran for years.", ["The trial (Intl. Med. Assn.) ran for years."]),
        ("Ask the Dept. of Educ. about grants.", ["Ask the Dept. of Educ. about grants."]),
        ("(approx. 5 km, i.e. an hour on foot)", ["(approx. 5 km, i.e. an hour on foot)"]),
        ("They cite Ann. Phys. (Leipzig) often.", ["They cite Ann. Phys. (Leipzig) often."]),
        ("The article (Proc. Roy. Soc. A, 1911) is famous.", ["The article (Proc. Roy. Soc. A, 1911) is famous."]),
        ("It was in the J. Am. Chem. Soc. Its impact was large.", ["It was in the J. Am. Chem. Soc.", "Its impact was large."]),
    ],
    # A sentence that starts lowercase after a real sentence end.
    "lowercase_sentence_start": [
        ("It costs $5. iPhones cost more.", ["It costs $5.", "iPhones cost more."]),
        ("We sold the car. eBay made it easy.", ["We sold the car.", "eBay made it easy."]),
        ("The update is out. iOS users should install it.", ["The update is out.", "iOS users should install it."]),
        ("Test the water. pH matters for fish.", ["Test the water.", "pH matters for fish."]),
        ("I bought a tablet. iPads are popular.", ["I bought a tablet.", "iPads are popular."]),
        ("Vaccines work differently. mRNA vaccines are new.", ["Vaccines work differently.", "mRNA vaccines are new."]),
        ("The shop closed. macOS still runs fine.", ["The shop closed.", "macOS still runs fine."]),
        ('"Stop," he said. she did not.', ['"Stop," he said. she did not.']),
        ("It was 5 p.m. and dark.", ["It was 5 p.m. and dark."]),
        ("They left. iTunes kept playing.", ["They left.", "iTunes kept playing."]),
        ("Prices rose 5%. eBooks got cheaper though.", ["Prices rose 5%.", "eBooks got cheaper though."]),
        ("The meeting is e.g. on Monday.", ["The meeting is e.g. on Monday."]),
    ],
    # Text the engine would read as a blip: never a segment of marks or a bare marker.
    "nothing_to_say": [
        ("Hello. !!! Next part here.", ["Hello. !!!", "Next part here."]),
        ("First line.\n\n---\n\nSecond line.", ["First line.", "---\n\nSecond line."]),
        ("Steps:\n1.", ["Steps:\n1."]),
        ("The end. ...", ["The end. ..."]),
        ("One. 2. Three.", ["One.", "2. Three."]),
        ("Done!\n\n**\n\nMore text follows.", ["Done!", "**\n\nMore text follows."]),
        ("Yes. ? No.", ["Yes. ?", "No."]),
        ("Hello.\n\n!!!\n\nNext part here.", ["Hello.", "!!!\n\nNext part here."]),
        ("Ok.\n\n• \n\nFine.", ["Ok.", "• \n\nFine."]),
        ("Answer: 42. Right.", ["Answer: 42.", "Right."]),
        ("Great job! \U0001f389\U0001f389", ["Great job! \U0001f389\U0001f389"]),
    ],
}  # fmt: skip
"""At least 100 cases, by failure class."""
