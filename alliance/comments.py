"""Reading a client's free-text check-in comment for rupture and risk markers.

Pure functions, no I/O. A comment is split into clauses, each clause into normalised words
(case, curly apostrophes, contractions with or without the apostrophe, texting shorthand, a
light spelling correction of the words the cues use), each word into its Snowball stem. Cue
patterns over those stems then look for the three kinds of marker:

- confrontation (3RS, moving against): criticism of the therapist or the therapy, doubt that
  it helps, wanting to stop or to switch;
- withdrawal (3RS, moving away): resignation, deferring, minimal or disengaged answers;
- risk: suicide and self-harm.

A pattern says what must be negated and what must not: "you never listen" and "I don't think
you really listen" are complaints (the negation belongs to the complaint, also when it sits on
a verb of thinking or feeling before it: "I don't think you listen" means "you don't listen"),
"I don't want to quit" is not. A pattern whose target is implicit ("I felt judged", "a waste of
time") does not count in a clause that names someone or something else ("my boss", "at work")
and nothing of the therapy. Risk patterns ignore negation on purpose: "I'm not suicidal" still
deserves a look.

Around the patterns, a few rules about whole clauses and comments: someone else's view ("my
sister says therapy is a waste of money") gives no rupture marker; a complaint taken back by
the next clause ("I didn't expect it to help, but it did") does not count; "it" after a clause
about something else is that thing ("Cancelled the gym, it was a waste of money"); a minimal
answer ("fine.", "nothing", "...") is withdrawal (3RS: minimal response); a comment gives at
most one of confrontation and withdrawal, confrontation first (as the detectors' rupture type).

The result names the cue that matched: the pattern's short label, or the list phrase as the
practice wrote it; never more of the client's text. English only: other languages are the
practice's phrase lists (alliance/detectors.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import snowballstemmer

Kind = Literal["confrontation", "withdrawal", "risk"]
KINDS: tuple[Kind, ...] = ("confrontation", "withdrawal", "risk")


@dataclass(frozen=True, slots=True)
class Reading:
    """The cue found per kind (a pattern label or a list phrase), or None."""

    confrontation: str | None = None
    withdrawal: str | None = None
    risk: str | None = None

    def cue(self, kind: Kind) -> str | None:
        value: str | None = getattr(self, kind)
        return value

    @property
    def kinds(self) -> frozenset[Kind]:
        return frozenset(kind for kind in KINDS if self.cue(kind) is not None)


@dataclass(frozen=True, slots=True)
class ExactCues:
    """A practice's settings for the reader: phrase lists for English, matched as whole
    normalised word sequences beside the patterns (a phrase in a clause with a negation
    shortly before it is skipped, not for risk; `negations` adds words to the built-in ones),
    and how many words make a comment brief (the detectors' `withdrawal_brief_words`)."""

    confrontation: tuple[str, ...] = ()
    withdrawal: tuple[str, ...] = ()
    risk: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    brief_words: int = 8


NO_CUES = ExactCues()

# --- normalisation --------------------------------------------------------------------------


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
# Words (with apostrophes and inner hyphens) and the punctuation that ends a clause.
_NA = re.compile(r"(?<![a-z])n/a(?![a-z])")
_TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[.,;:!?()\[\]\"…\n/|–—]| - ")
# Words that start a new clause; "and", "or" and "when" only in front of a new subject
# ("I didn't sleep and I feel judged", not "rushed and pointless"; "worse than when").
# ("though" is left out: "I do wonder though if we're getting anywhere".)
_CLAUSE_WORDS = frozenset({"but", "although", "however", "because", "while", "whereas"})
_CLAUSE_BEFORE_SUBJECT = frozenset({"and", "or", "so", "when", "then"})
_SUBJECTS = frozenset(
    ["i", "you", "we", "it", "this", "that", "they", "he", "she", "my", "your", "our", "there"]
)
# A clause opened by one of these can take back the complaint before it ("but it did").
_CONTRAST = frozenset({"but", "though", "although", "however"})

# Whole words rewritten before stemming: contractions without their apostrophe, shorthand.
_WORDS = {
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "isnt": "is not",
    "wasnt": "was not",
    "arent": "are not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "hadnt": "had not",
    "wont": "will not",
    "cant": "can not",
    "cannot": "can not",
    "couldnt": "could not",
    "wouldnt": "would not",
    "shouldnt": "should not",
    "aint": "is not",
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "youve": "you have",
    "youll": "you will",
    "theyre": "they are",
    "thats": "that is",
    "whats": "what is",
    "theres": "there is",
    "its": "it is",
    "u": "you",
    "ya": "you",
    "ur": "your",
    "r": "are",
    "idk": "i do not know",
    "dunno": "do not know",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "kinda": "kind of",
    "sorta": "sort of",
    "cuz": "because",
    "cos": "because",
    "coz": "because",
    "bc": "because",
    "nvm": "never mind",
    "nevermind": "never mind",
    "kms": "kill myself",
    "ok": "okay",
    "counseling": "counselling",
    "counselor": "counsellor",
}
_NOT_ENDINGS = {"can't": "can not", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
_SUFFIXES = {"'m": "am", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would"}
_IS_BEFORE_S = _wordset(
    """it that what there here he she who where how everything nothing this let"""
)

# Word sequences rewritten before stemming. Doubt is one word (a hedge, not a negation):
# "not sure this is helping" doubts that it helps, it does not deny a complaint.
_PHRASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (tuple(a.split()), tuple(b.split()))
    for a, b in (
        ("not really sure", "unsure"),
        ("not so sure", "unsure"),
        ("not sure", "unsure"),
        ("not certain", "uncertain"),
        ("not convinced", "unconvinced"),
        ("no idea if", "unsure if"),
        ("no idea whether", "unsure whether"),
        ("do not know if", "unsure if"),
        ("do not know whether", "unsure whether"),
        ("not only", "only"),
        ("a little bit", ""),
        ("a little", ""),
        ("a bit", ""),
        ("kind of", ""),
        ("sort of", ""),
        ("at all", ""),
        ("to be honest", ""),
        ("my self", "myself"),
        ("way too", "too"),
        ("far too", "too"),
        # "used to" a state is being accustomed; "used to" a verb is a view or habit now past.
        ("used to it", "accustomed to it"),
        ("used to this", "accustomed to this"),
        ("used to that", "accustomed to that"),
        ("used to being", "accustomed to being"),
        ("used to", "formerly"),
        ("at first i thought", "formerly i thought"),
    )
)

# Intensifiers and fillers dropped before matching: "you never *really* listen",
# "a *complete* waste of time", "felt *kind of* judged".
_DROPPED = _wordset(
    """really realy rly truly genuinely honestly literally totally completely
    absolutely entirely utterly fully very so quite pretty somewhat super extremely
    incredibly slightly complete total utter absolute such tbh ngl imo lol whatsoever
    particularly especially exactly actual"""
)

# Snowball stems that would merge words apart in meaning here.
_STEM_OVERRIDES = {
    "quite": "quite",
    "careful": "careful",
    "carefully": "careful",
    "useful": "useful",
    "used": "used",
    "kind": "kind",
    "dying": "dying",
    "living": "living",
    "sessions": "sessions",
    "appointments": "appointments",
    "checking": "checking",
}

_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """The Snowball (Porter2) stem of a lower-case word, with a few overrides."""
    override = _STEM_OVERRIDES.get(word)
    if override is not None:
        return override
    return str(_STEMMER.stemWord(word))


@functools.lru_cache(maxsize=1)
def _contractions() -> dict[str, str]:
    """Contractions without apostrophe by their misspellings with two letters swapped ("dosent",
    "cnat"); dropping a letter would make real words ("cant" and "can")."""
    out: dict[str, str] = {}
    for word in _WORDS:
        if len(word) >= 4 and "not" in _WORDS[word]:
            for i in range(len(word) - 1):  # two letters swapped only: dropping one
                out.setdefault(word[:i] + word[i + 1] + word[i] + word[i + 2 :], word)
    return {typo: word for typo, word in out.items() if typo not in _WORDS}


def _expand(token: str) -> Iterator[str]:
    if token not in _WORDS and token.isalpha() and token in _contractions():
        token = _contractions()[token]
    if "'" in token:
        if token in _NOT_ENDINGS:
            yield from _NOT_ENDINGS[token].split()
            return
        if token.endswith("n't"):
            yield token[:-3]
            yield "not"
            return
        for suffix, full in _SUFFIXES.items():
            if token.endswith(suffix):
                yield token[: -len(suffix)]
                yield full
                return
        if token.endswith("'s"):
            base = token[:-2]
            yield base
            if base in _IS_BEFORE_S:
                yield "is"
            return
        token = token.replace("'", "")
    if token in _WORDS:
        yield from _WORDS[token].split()
    elif "-" in token:
        yield from token.split("-")
    else:
        yield token


@functools.lru_cache(maxsize=1)
def _phrases_by_first() -> dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]]:
    index: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    for old, new in _PHRASES:
        index.setdefault(old[0], []).append((old, new))
    return {first: tuple(rules) for first, rules in index.items()}


def _rewrite(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    phrases = _phrases_by_first()
    while i < len(words):
        for old, new in phrases.get(words[i], ()):
            if tuple(words[i : i + len(old)]) == old:
                out.extend(new)
                i += len(old)
                break
        else:
            out.append(words[i])
            i += 1
    return [w for w in out if w not in _DROPPED]


def _clauses(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Clauses with the word that opened each ("" after punctuation or at the start)."""
    lowered = _NA.sub(" na ", text.translate(_APOSTROPHES).lower())
    words: list[str] = []
    for token in _TOKEN.findall(lowered):
        if token[0].isalnum():
            words.extend(_expand(token))
        else:
            words.append(".")
    result: list[tuple[str, tuple[str, ...]]] = []
    current: list[str] = []
    opener = ""

    def close(next_opener: str) -> None:
        nonlocal opener
        kept = _rewrite(current)
        if kept:
            result.append((opener, tuple(kept)))
        current.clear()
        opener = next_opener

    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        previous = words[i - 1] if i else ""
        if word == ".":
            close("")
        elif word in _CLAUSE_WORDS or (
            word in _CLAUSE_BEFORE_SUBJECT and following in _SUBJECTS and previous != "than"
        ):
            close(word)
        else:
            current.append(word)
    close("")
    return result


# --- the cues -------------------------------------------------------------------------------
# Patterns are sequences of elements over the stems of one clause, separated by spaces:
#   word          that word (stemmed: "listen" also matches "listening", "listened")
#   a|b|c         one of these; "pay+attention" is a word sequence inside an alternative
#   <SLOT>        one of the phrases of a slot below
#   _             any one word
#   ^  $          the start or end of the clause
# An element may end in ? (optional), * (any number) or {m,n}.
#
# Each cue has a polarity:
#   neg    counts only with a negation (not, no, never, hardly, without ...) in the clause
#          before its end: "you don't listen", "I don't think you listen", "you never listen";
#   doubt  like neg, or with doubt instead ("not sure", "I wonder if", "unconvinced"):
#          "not sure this is helping";
#   pos    counts only without a negation in the clause before it: "wasting my time", not
#          "I'm not wasting my time" or "I never said it was a waste of time";
#   any    negation does not matter (risk);
#   alone  only in a minimal answer (three words or fewer, no thanks): "I'm fine", "sure",
#          "eh, ok", not "I'm ok, a bit tired";
#   brief  only in a brief comment (eight words or fewer): "same as always".
# and a target:
#   you    the cue names the therapist or the therapy itself;
#   open   the target is implicit ("I felt judged", "not helping"): a clause that names
#          someone or something else (<OTHER>) and nothing of the therapy (<THERAPY_WORD>)
#          does not count ("I felt judged by my family", "wasting my time at work").

SLOTS: dict[str, str] = {
    # The therapist as the subject of a complaint.
    "YOU": "you | your | my therapist | the therapist | my counsellor | the counsellor",
    # Words allowed between a subject and its verb: auxiliaries, negations, adverbs.
    "LIGHT": """do | does | did | will | would | can | could | should | might | must | may
        | am | is | are | was | were | be | been | being | have | has | had | not | never
        | no | hardly | barely | rarely | seldom | even | ever | just | always | still
        | often | seem to | seems to | seemed to | seem | seems | seemed | try to | tried to
        | bother to | bothered to | want to | wanted to | keep | keeps | kept | to | feel
        | feels | felt | like | that | sometimes | anymore | now | at times | much | any
        | enough | last time | today | in session | in the session | going to | yet | already
        | actually | clearly | obviously | definitely | probably | at least
        | stuff""",
    # The therapy: the target of "not helping".
    "THERAPY": """this | it | that | therapy | the therapy | this therapy | therapist | sessions
        | session | the sessions | the session | these sessions | our sessions | my sessions
        | this session | today's session | the last session | counselling | coming here
        | coming | talking | talking to you | our work | this work | the check ins
        | these check ins | check ins | checkins | the checkins | this approach
        | the approach | your approach | your advice | the advice | the exercises | exercises
        | the homework | homework | the techniques | your suggestions | the suggestions
        | the worksheets | worksheets | these worksheets | the journaling | journaling
        | cbt | emdr | this process | seeing you | you | we""",
    # The therapy named outright (not "it", "this").
    "THERAPY_STRONG": """therapy | the therapy | this therapy | sessions | session | the sessions
        | the session | these sessions | our sessions | my sessions | this session
        | today's session | the last session | last session | counselling | our work
        | the check ins | these check ins | check ins | checkins | the checkins
        | this approach | the approach | your approach | your advice | the advice
        | the exercises | the homework | your suggestions | cbt | emdr | you | these questions
        | the worksheets | these worksheets | your comment | your comments | your remark
        | mindfulness | the mindfulness | the breathing | breathing exercises | the techniques
        | the tools | this stuff | the stuff | that stuff | meditation | these weekly questions
        | the weekly questions | weekly questions | the weekly check ins | that comment
        | the comment | that remark | what you said
        | your question | your reaction | your response | your tone
        | the questions | your questions | the questionnaire | this questionnaire | this bot
        | the bot | this app | the app | these messages | the messages | the reminders
        | these reminders""",
    # Words that name the therapy: a clause with one of these keeps an open cue.
    "THERAPY_WORD": """you | your | therapy | session | sessions | counselling | check ins
        | checkins | checkin | here | cbt | emdr | appointment | appointments""",
    # Other people and things: an open cue in a clause about them does not count.
    "OTHER": """boss | manager | colleague | colleagues | coworker | coworkers | partner
        | husband | wife | boyfriend | girlfriend | ex | mum | mom | mother | dad | father
        | parents | parent | brother | sister | son | daughter | kids | children | child
        | family | friend | friends | doctor | gp | psychiatrist | nurse | teacher | teachers
        | landlord | neighbour | neighbor | flatmate | roommate | people | everyone
        | everybody | nobody | he | she | they | him | her | them | job | at work | my work
        | from work | to work | after work | before work | work is | work was | office
        | career | school | uni | university | college | class | course | gym | diet | phone
        | laptop | medication | meds | tablets | smoking | drinking | alcohol | coffee | sugar
        | car | train | bus | traffic | weather | heating | internet | wifi | meeting
        | meetings | project | exam | exams | deadline | house | flat | kitchen | garden | dog
        | cat | relationship | marriage | dating | church | team | movie | film
        | book | show | series | news | party | holiday | trip | flight | weekend | day
        | date | slot | schedule | shift | shifts | neighbours | bank | rent | bills | degree
        | night | social media | instagram | tiktok | lent | home | membership
        | monday | tuesday | wednesday | thursday | friday | saturday | sunday | morning
        | afternoon | evening | tonight | tomorrow""",
    # What a therapist is blamed for doing: "you interrupted me", "you keep pushing me".
    "YOU_DID": """interrupt | interrupted | interrupting | cut me off | talk over me
        | talked over me | judge | judged | judging | lecture | lectured | lecturing
        | rush me | rushed me | rushing me | rushed | rushed through | push me | pushed me
        | pushing me | pushed too hard | push too hard | dismiss | dismissed | dismissing
        | ignore | ignored | ignoring | blame | blamed | blaming | criticise | criticised
        | criticize | criticized | patronise | patronised | patronize | patronized
        | brush off | brushed off | brushed me off | changed the subject | change the subject
        | laughed at | laugh at | talk down | talked down | forgot | forget | misunderstood
        | misunderstand | upset me | hurt me | annoy me | annoyed me | frustrate me
        | frustrated me | pressure me | pressured me | invalidated | invalidate | minimised
        | minimized | minimise | minimize | twist my words | twisted my words
        | tell me what to do | told me what to do | looked at your phone
        | looked at the clock | checked the time | checked your watch | looked at your watch
        | checking your watch | checking the time | were late | are late | cancelled on me
        | have an agenda | had an agenda | bring everything back | bring it all back
        | bring it back to | keep bringing up | kept bringing up | sit there | sat there
        | just nod | just nodded | talk too much | talked too much | talk a lot
        | took his side | took her side | took their side | took my partner side
        | took my husband side | took my wife side | took my boyfriend side
        | took my girlfriend side | took my mum side | took my mom side | took my boss side
        | took my ex side | took my dad side | took my parents side | took my family side
        | repeat what i say | repeat everything | repeat it back | repeat back | just repeat
        | keep repeating | parrot | taking his side | taking her side | taking their side
        | take the side of | took the side of | taking the side of | takes the side of
        | tell me what i feel | telling me what i feel | told me what i feel
        | tell me how i feel | telling me how i feel | tell me what to feel
        | reading from a script | read from a script | reading off a script
        | following a script | on autopilot | made up your mind | already decided | decided about me
        | assume | assumed | assuming | talked more than | talk more than | did all the talking
        | do all the talking
        | canceled on me | took their side | took his side | took her side | side with
        | sided with""",
    # What a therapist is blamed for not doing: "you don't listen", "you never get it".
    "YOU_DIDNT": """listen | hear | heard | understand | understood | get me | get it | get what
        | get how | get that | get where | care | help | helped | helping
        | believe me | respect | take me seriously | pay attention | paid attention
        | let me talk | let me finish | let me speak | let me explain | see how | see what
        | see me | acknowledge | acknowledged | remember | remembered | ask me | asked me
        | follow up | followed up | answer my | answered my | engage | engaged | on my side
        | there | present | with me | focused | interested | paying attention | take my
        | take it seriously
        | the right person | the right therapist | a good fit | the right fit | a good match
        | right for me""",
    # How a therapist is described in a complaint.
    "BAD": """dismissive | condescending | patronising | patronizing | judgmental | judgemental
        | pushy | rude | cold | distant | distracted | impatient | bored | uninterested
        | disinterested | preachy | robotic | arrogant | harsh | insensitive | wrong
        | unprofessional | scripted | fake | not listening | on your phone | late again
        | always late | late | in a hurry | no help | useless | unhelpful | not helpful
        | like a textbook | like a robot | like a script | like a parrot | miles away
        | somewhere else | elsewhere | half asleep""",
    # How a session or the therapy is described in a complaint.
    "SESSION_BAD": """useless | pointless | worthless | unhelpful | not helpful | no help
        | a waste | a joke | going nowhere | getting nowhere | rushed | too rushed | too short
        | repetitive | superficial | shallow | boring | a chore | frustrating | awkward
        | uncomfortable | dismissive | condescending | patronising | patronizing
        | judgmental | judgemental | preachy | generic | scripted | fake | off track
        | all over the place | disorganised | disorganized | unstructured | too fast
        | too slow | exhausting | draining | cold | clinical | annoying | irritating
        | stressful | a burden | a hassle | stupid | dumb | silly | intrusive | irrelevant
        | too many | a scam | a con | a rip off | nonsense | rubbish | bullshit | crap | busywork
        | out of line | uncalled for | inappropriate | unfair | hurtful | offensive
        | going backwards | like going backwards | a step backwards | backwards
        | worse""",
    # The same said of "this" or "that".
    "WEAK_BAD": """useless | pointless | worthless | unhelpful | not helpful | no help | a waste
        | a joke | going nowhere | getting nowhere | dismissive | condescending | patronising
        | patronizing | judgmental | judgemental | ridiculous | a farce""",
    # What therapy does when it works, said with a negation or doubt: "not helping".
    "WORKS": """help | helping | helps | helped | helpful | work | working | works | worked
        | useful | make a difference | making a difference | makes a difference
        | made a difference | making any difference | make any difference | go anywhere
        | going anywhere | get anywhere | getting anywhere | getting us anywhere
        | lead anywhere | leading anywhere | do anything | doing anything | doing much
        | do much | benefit | benefiting | worth it | worth the money | worth my time
        | worth the time | worth the effort | right for me | for me | a good fit | the right fit
        | fit | fitting | fits | suit me | suits me | suited | what i need | what i needed
        | making progress | make progress | progressing | improving | a good match
        | the right match | click | clicking | connect | connecting | gel | fix | fixing
        | fixes | solve | solving | the right thing | the answer | the right way""",
    # What a client says about themselves when they feel unheard: "I don't feel heard".
    "FEEL_HEARD": """heard | listened to | understood | seen | respected | supported | valued
        | validated | believed | taken seriously | safe with you | comfortable with you
        | comfortable here | safe here | helped | welcome | cared for | cared about
        | connected | a connection | connection""",
    "FELT_BAD": """unheard | misunderstood | ignored | dismissed | judged | rushed | criticised
        | criticized | lectured | patronised | patronized | invalidated | blamed | belittled
        | pressured | pushed | attacked | talked down to | brushed off | shut down by you
        | unseen | unsupported | uncomfortable with you | uncomfortable in session
        | uncomfortable in the session | worse after | worse after the session
        | worse after sessions | worse after our sessions | stupid | small | humiliated
        | embarrassed by you | another case | a case | a number | another number
        | another client | a statistic | a box to tick | a checkbox | a lecture | busywork
        | an interrogation | a test | an exam | a job interview | box ticking | more confused
        | confused | put off | put down | unheard""",
    # What a client stops or leaves: "stop coming", "quit therapy".
    "STOP_WHAT": """coming | coming here | coming in | therapy | the therapy | this therapy
        | sessions | the sessions | our sessions | my sessions | these sessions | seeing you
        | working with you | counselling | the check ins | these check ins
        | check ins | checkins | the checkins | these checkins | this process | the process
        | these | you""",
    "STOP": """stop | stopping | stopped | quit | quitting | end | ending | give up | giving up
        | pause | pausing | a break from
        | take a break from | taking a break from | drop | dropping | drop out of | leave
        | leaving""",
    "INTEND": """want to | wanted to | thinking of | thinking about | think about | thought about
        | considering | consider | should | might | going to | ready to | time to | tempted to
        | planning to | plan to | need to | wondering about | will | would like to | may
        | maybe | probably""",
    "NEG": """not | no | never | hardly | barely | rarely | seldom | without | nor | neither
        | formerly""",
    "DOUBT": """unsure | uncertain | unconvinced | wonder | wondering | wondered | doubt
        | doubts | doubting | doubtful | question | questioning | sceptical | skeptical
        | whether""",
    "ME": "me | myself | i",
    # Someone else, when they say or think something (REPORTED below).
    "OTHER_PERSON": """boss | manager | colleague | partner | husband | wife | boyfriend
        | girlfriend | ex | mum | mom | mother | dad | father | parents | brother | sister
        | son | daughter | friend | friends | doctor | gp | people | everyone | he | she
        | they""",
}

# (label, polarity, target, pattern)
Cue = tuple[str, str, str, str]


def _table(text: str) -> tuple[Cue, ...]:
    """Cues written as "label / polarity / target" lines, each followed by its pattern on
    indented lines; an indented line continues the pattern (directly after a "|", else after
    a space). Lines starting with # are notes."""
    cues: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            joint = "" if cues[-1][3].endswith("|") or not cues[-1][3] else " "
            cues[-1][3] += joint + line.strip()
        else:
            label, polarity, target = (part.strip() for part in line.split(" / "))
            cues.append([label, polarity, target, ""])
    return tuple((c[0], c[1], c[2], c[3]) for c in cues)


# A clause with someone else's words or view gives no rupture cue: "my sister says therapy is
# a waste of money".
REPORTED = "<OTHER_PERSON> says|said|thinks|thought|believes|told+me|reckons|keeps+saying"
# A clause after "but" that takes the complaint before it back: "I didn't expect it to help,
# but it did".
TAKEN_BACK = (
    "^ it|this|that|you|therapy|sessions now? did|does|has|have|do|helped|helps|worked|works"
    "|is+helping|is+working"
)

CONFRONTATION = _table(
    """
waste of time / pos / open
    waste|wasting|wasted of? my|our|an|the? time|money|hour|evening|session|energy
you don't listen / doubt / you
    <YOU> <LIGHT>{0,6} listen
you don't understand or care / doubt / you
    <YOU> <LIGHT>{0,6} <YOU_DIDNT>
you don't care / neg / you
    <YOU> <LIGHT>{0,6} give+a+damn|give+a+shit|give+a+toss
not feeling heard / neg / open
    <ME> <LIGHT>{0,6} <FEEL_HEARD>
not feeling heard / neg / open
    feel|felt|feeling <LIGHT>{0,2} <FEEL_HEARD>
not feeling heard / neg / you
    <ME> <LIGHT>{0,4} safe|comfortable|able _{0,4} to+you|with+you|in+session|in+the+session|
    in+therapy
felt judged, rushed or dismissed / pos / open
    feel|felt|feeling|left <LIGHT>{0,3} <FELT_BAD>
felt judged, rushed or dismissed / pos / open
    <ME> was|got|been|being|am <LIGHT>{0,2} <FELT_BAD>
felt judged, rushed or dismissed / pos / you
    judged|dismissed|rushed|ignored|criticised|criticized|lectured|pushed|patronised|patronized|
    misunderstood|interrupted by you
felt judged, rushed or dismissed / pos / you
    <YOU> <LIGHT>{0,3} made|make|makes me <LIGHT>{0,2} <FELT_BAD>
felt judged, rushed or dismissed / pos / you
    <YOU> <LIGHT>{0,3} made|make|makes me <LIGHT>{0,2} bad|worse|guilty|ashamed|like+a+failure|
    like+a+child|crazy|defensive
criticism of what you did / pos / you
    <YOU> <LIGHT>{0,4} <YOU_DID>
criticism of you / pos / you
    <YOU> <LIGHT>{0,4} <BAD>
criticism of you / pos / you
    <YOU> <LIGHT>{0,3} came+across|come+across|sounded|sound|looked as? <BAD>
criticism of you / pos / open
    ^ <LIGHT>{0,2} dismissive|condescending|patronising|patronizing|judgmental|judgemental|
    pushy|preachy
criticism of the sessions / pos / open
    <THERAPY_STRONG> <LIGHT>{0,4} <SESSION_BAD>
criticism of the sessions / pos / open
    this|that <LIGHT>{0,4} <WEAK_BAD>
criticism of the sessions / pos / open
    it <LIGHT>{0,4} unhelpful|not+helpful|no+help|a+joke|going+nowhere|getting+nowhere|a+waste
criticism of you / pos / you
    annoyed|angry|frustrated|upset|irritated|disappointed|mad|pissed|hurt|offended|put+off|
    uncomfortable|confused|thrown|triggered|bothered|stung <LIGHT>{0,2} with|at|by|in|about you|
    your|the+session|the+sessions|therapy|the+therapist|my+therapist|how+you|what+you|
    the+way+you|the+homework|the+exercises|the+questions|the+comment|that+comment
criticism of you / neg / you
    <ME> <LIGHT>{0,3} appreciate|appreciated|like|liked|enjoy|enjoyed being|getting told|
    labelled|labeled|called|lectured|judged|pushed|rushed|interrupted|analysed|analyzed|
    diagnosed
criticism of you / pos / you
    left|came+out|walked+out|went+home feeling|felt <LIGHT>{0,2} worse|more+confused|confused|
    frustrated|unheard|angry|upset|hurt|empty|dismissed|judged|misunderstood
criticism of you / pos / you
    same questions|thing|things|stuff|exercises|conversation|conversations|topics every|each
    week|time|session
criticism of you / pos / you
    every|each week|time|session _{0,3} same questions|thing|things|stuff|exercises|
    conversation|conversations|topics
criticism of you / pos / you
    money|price|cost|paying|pay for not+much|nothing|little|so+little
criticism of you / pos / you
    pointless|useless|no+point|no+use talking|coming|going|telling <LIGHT>{0,1} to? you|here|
    therapy|to+therapy
criticism of you / doubt / you
    unsure|wonder|wondering|know|see|understand|get why <ME> <LIGHT>{0,3} coming|come|here|
    bother|bothering|doing+this|still+come|still+coming
criticism of you / pos / you
    what <YOU> said|suggested|did|told+me _{0,4} hurt|upset|annoyed|bothered|offended|
    frustrated|wrong|unfair|stung|rude|harsh|insensitive
criticism of you / neg / you
    <ME> do|did|does|can|could|would|will|have not|never always|ever|even|just|actually?
    like|liked|agree|agreed|trust|appreciate|appreciated the+way|how|what|when|that|with? you|your
criticism of you / pos / you
    disagree|disagreed with you|your
criticism of you / pos / you
    ^ as+if|yeah+right|like <YOU> <LIGHT>{0,2} care|listen|understand|get
criticism of you / pos / open
    thanks|thank+you for nothing
criticism of you / pos / you
    <YOU> <LIGHT>{0,3} wrong about me
criticism of you / pos / you
    wish <YOU> <LIGHT>{0,3} <YOU_DIDNT>
criticism of you / pos / you
    why <LIGHT>{0,2} <YOU> <LIGHT>{0,2} keep|always|insist|still
criticism of you / pos / you
    ^ seemed|looked|sounded|seem <LIGHT>{0,1} miles+away|distracted|bored|uninterested|
    disinterested|elsewhere|somewhere+else
criticism of you / pos / you
    stop asking|pushing|telling+me|making+me|lecturing
criticism of you / pos / you
    hate|hating|dread|dreading|resent|dislike|detest <LIGHT>{0,2} <THERAPY_STRONG>
criticism of you / pos / you
    hate|hating|dread|dreading|resent|dislike|detest <LIGHT>{0,2} coming|these|this+bot|
    the+questions
criticism of you / neg / open
    <ME> <LIGHT>{0,4} like|liked|enjoy|enjoying|look+forward+to coming|the+sessions|sessions|
    therapy|these|this|the+check+ins
criticism of you / pos / you
    tired|sick|bored|fed+up of|with talking+about|going+over|discussing|answering|repeating|
    these|the+same
criticism of you / pos / you
    tired|sick|bored|fed+up of|with <THERAPY_STRONG>
criticism of you / pos / open
    tired|sick|bored|fed+up of|with this $
criticism of you / pos / open
    annoyed|angry|frustrated|upset|irritated|disappointed|fed+up with|at|by|about how+slow|
    how+slowly|the+pace|the+progress|how+little|the+lack+of+progress|progress
criticism of you / pos / you
    too many|much messages|reminders|questions|check+ins|checkins|notifications|homework
criticism of you / neg / you
    <ME> <LIGHT>{0,2} see|understand|get why we|you
not helping / doubt / open
    <THERAPY> <LIGHT>{0,6} <WORKS>
not helping / doubt / open
    ^ <LIGHT>{0,4} <WORKS> $
not helping / pos / you
    is|does|are|do|did|was <THERAPY> even <WORKS>
not helping / pos / open
    no|little|zero progress|difference|improvement
not helping / pos / open
    ^ <LIGHT>{0,3} unhelpful|not+helpful|useless|no+help $
not helping / pos / open
    wrong approach|kind+of+therapy|type+of+therapy|therapist|method
not helping / neg / open
    <ME> <LIGHT>{0,3} see|notice|feel|seeing|noticing|getting|get <LIGHT>{0,2} progress|results|
    improvement|a+difference|benefit|change|changes
not helping / doubt / open
    get|getting|got _{0,2} out of|from <THERAPY>
not helping / pos / open
    coming|therapy|sessions|months|weeks|year|years|seeing+you|here _{0,8} nothing <LIGHT>{0,2}
    changed|changes|improved|different|better
not helping / pos / open
    coming|therapy|sessions|months|weeks|year|years|seeing+you|here _{0,8} still the+same|stuck|
    no+better|as+bad
not helping / pos / open
    worse than when+i+started|when+i+began|before|since+i+started|since+starting|since+therapy
not helping / pos / open
    worse since i? started|starting|coming|therapy
not helping / pos / open
    ^ it|that was|felt|seemed pointless|useless|worthless|unhelpful|a+waste
not helping / neg / you
    we <LIGHT>{0,3} working+on|work+on|talk+about|talking+about|focus+on|focusing+on|get+to|
    getting+to|address|addressing|deal+with|dealing+with what+matters|what+i|the+real|
    the+important|my+goals|the+things|what+is+important|the+stuff|the+problem|the+issue|
    my+problems|my+issues|my+stuff|anything+real|anything+useful|the+point
not helping / pos / open
    need|want|would+like more than|more <LIGHT>{0,2} listening|direction|structure|feedback|
    guidance|tools|practical|from+you|from+the+sessions|from+therapy
not helping / pos / open
    going|getting|go|get|lead|leading nowhere
not helping / pos / open
    going|go|talking|talk|run|running|go+round|going+round|go+around|going+around|talking+round|
    talk+round in circles
not helping / pos / open
    we <LIGHT>{0,3} stuck
not helping / pos / you
    what|why am|is|are i|we <LIGHT>{0,2} pay|paying for
not helping / pos / you
    why am|do|are i|we <LIGHT>{0,2} doing+this|coming|bothering|here|in+therapy|doing+therapy
not helping / pos / you
    point of|in <STOP_WHAT>
not helping / neg / open
    <LIGHT>{0,2} what <ME> <LIGHT>{0,2} need|needed|came+for|signed+up+for|want|wanted|expected|
    hoped+for
wanting to stop / pos / open
    <STOP> <LIGHT>{0,1} <STOP_WHAT>
wanting to stop / pos / open
    stop|quit|stopping|quitting doing the|these? worksheets|exercises|homework|journaling
wanting to stop / pos / open
    better|fine|okay off? on my own|alone|by+myself|without+therapy|without+you|without+this|
    without+the+sessions
wanting to stop / pos / open
    see if|whether <ME> <LIGHT>{0,2} miss it|therapy|the+sessions|you
wanting to stop / neg / open
    <ME> <LIGHT>{0,3} feeling|into|enjoying|loving <THERAPY_STRONG>
wanting to stop / neg / open
    <ME> <LIGHT>{0,3} feeling|into|enjoying|loving it|this <LIGHT>{0,1} $
wanting to stop / pos / open
    <INTEND> <LIGHT>{0,3} quit|quitting|drop+out|dropping+out $
wanting to stop / pos / open
    thinking|think|thought|considering about|of? stopping|quitting|leaving|ending $
wanting to stop / pos / open
    thinking|think|thought|considering about|of? stopping|quitting after|soon|now|for+a+while|
    at+the+end|when|in|this|next
wanting to stop / pos / open
    done|finished|through with <STOP_WHAT>
wanting to stop / pos / open
    done|finished|through with this|you|it+all $
wanting to stop / pos / open
    had|have enough of <THERAPY>
wanting to stop / pos / open
    another|different|new|other|better therapist|counsellor|therapy|approach|method|style|
    type+of+therapy
wanting to stop / pos / open
    call|calling|called it quits
wanting to stop / pos / open
    cancel|cancelling|canceling|cancelled my|the|our sessions|appointments
wanting to stop / neg / open
    <ME> <LIGHT>{0,4} book|booking|schedule|make|rebook another|the+next|a+new|more session|
    sessions|appointment|appointments
wanting to stop / pos / open
    see|seeing|try|trying|find|finding|switch+to|need someone|somebody else
wanting to stop / pos / open
    switch|switching|change|changing therapist|therapists|counsellor
wanting to stop / neg / open
    <ME> <LIGHT>{0,4} want|wanted|planning|plan <LIGHT>{0,2} come|coming|keep+coming back|again|
    anymore
wanting to stop / neg / open
    ^ <ME>? <LIGHT>{0,3} coming|come back|again|anymore $
wanting to stop / doubt / open
    <ME> <LIGHT>{0,3} come|coming|be back|again|anymore $
wanting to stop / doubt / open
    <ME> <LIGHT>{0,4} continue|continuing|keep+coming|keep+going+with|carry+on+with|go+on+with
wanting to stop / pos / open
    cancel|cancelling|canceling|cancelled all|the+rest+of|the+remaining|future|further|any+more|
    remaining <LIGHT>{0,1} my|the|our? sessions|appointments|therapy
# round 1 after the held-out evaluation (general rules, see docs/detectors.md)
criticism of the sessions / pos / open
    <THERAPY_STRONG> _{0,4} is|are|was|were|feel|feels|felt|seem|seems|seemed <LIGHT>{0,2}
    <SESSION_BAD>
criticism of the sessions / pos / open
    <THERAPY_STRONG> <LIGHT>{0,2} made|makes|make|making things|me|it <LIGHT>{0,1} worse
wanting to stop / pos / open
    <INTEND> <LIGHT>{0,2} stop|quit $
wanting to stop / pos / open
    need|want|looking+for|find|finding a|another therapist|counsellor|someone who
wanting to stop / pos / open
    find|finding|see|seeing|try|trying someone|somebody new|different
wanting to stop / pos / open
    <STOP> _{0,2} therapy|counselling|the+sessions
wanting to stop / pos / open
    <ME> <LIGHT>{0,2} stop|quit after|soon|at+the+end|when
wanting to stop / pos / open
    need|want|take|taking|needing a+break from this|therapy|it+all|the+sessions|you
wanting to stop / neg / open
    <ME> <LIGHT>{0,4} do|doing|go+to|going+to therapy|this|counselling|the+sessions anymore|again
wanting to stop / doubt / open
    ^ <ME>? <LIGHT>{0,4} about? continue|continuing|keep+coming|keep+going+with|carry+on+with
criticism of you / pos / you
    same _? questions|thing|things|stuff|exercise|exercises|conversation|topics every|each week|time
criticism of you / pos / you
    every|each week|time|session _{0,3} same _? questions|thing|things|stuff|exercise|exercises
criticism of you / pos / you
    do|did|are|were|have|can <YOU> even|actually|ever
criticism of you / pos / you
    wish <YOU> <LIGHT>{0,2} _ less|more
criticism of you / pos / you
    hate|hated|hating|dread|dreaded|dreading|disliked|loathe|loathed _{0,3}
    exercise|exercises|homework|worksheet|worksheets|session|sessions|questions|therapy|role+play
criticism of you / pos / you
    <YOU> _{0,3} more interested in _{0,3} than
criticism of you / pos / you
    hard|difficult|impossible to trust|open+up+to|talk+to you
criticism of you / pos / you
    <YOU> could|might <LIGHT>{0,1} at+least
criticism of you / neg / open
    <LIGHT>{0,2} happy|thrilled|pleased|satisfied|impressed|keen|sold with|about|on
    how|the+session|today|that|this|it|you|your|therapy
criticism of you / pos / open
    too much talking|talk|theory|homework|talking+about
criticism of you / pos / open
    not enough practical|help|structure|direction|focus|guidance|tools|support
not helping / any / you
    point|use of|in? <STOP_WHAT>
not helping / neg / you
    see|get the|any point of|in <STOP_WHAT>
not helping / doubt / you
    why <ME> <LIGHT>{0,2} pay|paying for
waste of time / pos / open
    your|my time and mine|yours
not feeling heard / neg / you
    <ME> <LIGHT>{0,4} safe|comfortable|able _{0,3} telling+you|talking+to+you|sharing+with+you|
    opening+up+to+you|around+you
# round 2
wanting to stop / neg / open
    <ME> <LIGHT>{0,4} do|doing|go+to|going+to therapy|this|counselling|the+sessions $
wanting to stop / any / open
    unsure|uncertain|doubt|doubts|wondering about|whether continuing|to+continue|continue
criticism of you / pos / you
    <YOU> <LIGHT>{0,3} take|took|taking|takes my? <OTHER_PERSON> side
criticism of you / neg / you
    ^ <YOU> clearly|obviously|just? do|did|does|are|were|can not|never $
criticism of you / pos / open
    ^ it|that|this <LIGHT>{0,2} bothered|upset|hurt|annoyed|offended|stung me
criticism of you / pos / open
    tired|sick|bored|fed+up of|with hearing
not helping / pos / open
    would|should|could be|have better|different|further|more+progress by now
"""
)

WITHDRAWAL = _table(
    """
it doesn't matter / neg / open
    ^ <LIGHT>{0,1} it|that|this? <LIGHT>{0,4} matter|matters $
it doesn't matter / neg / open
    ^ <LIGHT>{0,1} it|that|this? <LIGHT>{0,4} matter|matters anyway|anymore|much|either|to+me|
    what+i+say|what+i+do|what+i+think
it doesn't matter / pos / open
    nothing <LIGHT>{0,2} matters|matter|helps|help|works
it doesn't matter / pos / open
    what|why is|does it|that|the <LIGHT>{0,1} point|matter anyway|anymore|then|even? $
no point / pos / open
    no|little point <LIGHT>{0,3} $
no point / pos / open
    no|little|not+much point|use in? trying|talking|saying|explaining|bothering|telling|writing|
    asking|hoping|anything
resignation / neg / open
    <ME> <LIGHT>{0,3} have|got the|any? energy|strength|words to? talk|explain|write|say|
    get+into|go+into
resignation / pos / open
    <ME> <LIGHT>{0,3} stopped|stop|given+up caring|trying|bothering|hoping
resignation / pos / open
    why|what+for even? bother|bothering|try|trying $
no point / pos / open
    ^ <LIGHT>{0,2} pointless|hopeless|futile $
no point / pos / open
    it|everything|all|life|things <LIGHT>{0,3} pointless|hopeless|futile
hopeless or self-critical / pos / open
    <ME> <LIGHT>{0,3} hopeless|useless|a+failure|a+lost+cause|broken|beyond+help|too+broken|
    pathetic|worthless|a+mess|to+blame
hopeless or self-critical / pos / open
    <ME> am too much|broken|messed+up|far+gone|damaged
hopeless or self-critical / pos / open
    <ME> am <LIGHT>{0,2} the+problem|the+issue|difficult|too+difficult|a+bad+person|the+worst|
    a+waste+of+space|not+good+enough
hopeless or self-critical / neg / open
    <ME> am <LIGHT>{0,2} worth the+effort|it|your+time|helping|the+trouble
hopeless or self-critical / pos / open
    <ME> am <LIGHT>{0,2} accustomed to it|this|that $
hopeless or self-critical / pos / open
    <ME> am <LIGHT>{0,2} bad|terrible|useless|hopeless|rubbish|no+good at this|at+therapy|
    at+talking|at+opening+up
hopeless or self-critical / pos / open
    my own? fault
hopeless or self-critical / pos / open
    just|probably|only me|<ME> <LIGHT>{0,2} overreacting|being+silly|being+stupid|
    being+dramatic|too+sensitive|oversensitive|being+a+baby|too+needy|being+difficult
hopeless or self-critical / pos / open
    ^ <LIGHT>{0,2} just|probably|only me $
hopeless or self-critical / neg / open
    <ME> <LIGHT>{0,3} deserve help|this|to+feel+better|your+time|better|to+get+better
hopeless or self-critical / pos / open
    tired|sick|exhausted of|from trying|fighting
hopeless or self-critical / pos / open
    nothing _{0,3} make|makes|made|making <LIGHT>{0,1} a|any? difference
hopeless or self-critical / pos / open
    what difference <LIGHT>{0,2} it|that|this make|makes
hopeless or self-critical / pos / open
    will+not|would+not|does+not|can+not change anything|a+thing
giving up / pos / open
    give|gave|given|giving up $
giving up / pos / open
    give|gave|given|giving up hope
giving up / pos / open
    give|gave|given|giving up on <LIGHT>{0,1} me|myself|everything|it|this|trying|things|life|
    anything|getting|change|changing|feeling
resignation / pos / open
    what|why is|does the? use $
resignation / pos / open
    nothing <LIGHT>{0,2} will|ever|going+to|gonna change|changes|changing
resignation / pos / open
    never change|changes $
resignation / pos / open
    nothing ever? changes $
resignation / neg / open
    ^ it|that|this? <LIGHT>{0,3} make|makes|made a|any? difference $
resignation / neg / open
    ^ it|that|this? <LIGHT>{0,3} worth it|the+effort|trying $
resignation / brief / open
    same as always|usual|ever|every+week|last+week i+guess|i+suppose? $
resignation / pos / open
    it is what it is
resignation / pos / open
    ^ same|same+old|same+thing|same+old+same+old <LIGHT>{0,1} $
I don't care / neg / open
    ^ <ME>? <LIGHT>{0,3} care|bothered $
I don't care / neg / open
    ^ <ME>? <LIGHT>{0,3} care anymore|less|either+way|about+anything|about+it|what+happens
I don't care / neg / open
    ^ <ME>? <LIGHT>{0,3} care much $
I don't care / pos / open
    can|could not be bothered
I don't care / pos / open
    ^ <ME>? <LIGHT>{0,2} too tired|exhausted to care|talk|write|explain|think|bother|say
deferring / pos / you
    <YOU> know|knows best|better $
deferring / pos / you
    up|down to you $
deferring / pos / you
    your call|choice|decision $
deferring / pos / you
    ^ <LIGHT>{0,2} whatever|anything you <LIGHT>{0,2} think|say|want|decide|suggest|prefer|like
deferring / pos / you
    <YOU> <LIGHT>{0,1} decide|choose $
deferring / pos / you
    <YOU> <LIGHT>{0,1} the expert
deferring / pos / open
    go|going|went along with <LIGHT>{0,1} it|whatever|what|you|everything
deferring / pos / open
    just|easier <LIGHT>{0,2} agree|agreed|nod|nodded|agreeing|nodding
deferring / pos / open
    do|did|go+with whatever|what you <LIGHT>{0,1} say|said|want|suggest|think|decide
deferring / pos / open
    waste|wasting|wasted your time
deferring / pos / open
    sorry for|about|to going+on|rambling|bothering|moaning|complaining|being|the+rant|taking+up
deferring / neg / open
    <ME> <LIGHT>{0,3} bother|burden|trouble|annoy you
deferring / pos / open
    <ME> will|should|must|need+to|have+to <LIGHT>{0,1} try+harder|do+better|work+harder
deferring / neg / open
    ^ <ME>? <LIGHT>{0,3} mind either+way|whatever|which
deferring / pos / open
    ^ either way|no+preference $
deferring / pos / open
    said|say|told+you|tell+you|told|tell what _{0,3} you <LIGHT>{0,2} want|wanted|
    wanted+to+hear|want+to+hear|expected|expect|needed+to+hear
deferring / pos / open
    ^ if you say $
whatever / alone / open
    ^ whatever|meh|eh|nah|shrug|pass|skip|sure|hmm|k|kk|okay $
minimal answer / any / open
    ^ i+guess|i+suppose it|that|everything? is|was? okay|fine|alright|good $
minimal answer / alone / open
    ^ i+suppose|i+guess|not+really|guess+so|suppose+so $
minimal answer / alone / open
    ^ i|it|everything am|is fine|okay|alright $
minimal answer / any / open
    ^ do not worry about me|it $
minimal answer / neg / open
    ^ _? <LIGHT>{0,3} important|a+big+deal|worth+mentioning|worth+talking+about $
whatever / any / open
    ^ okay|fine|good|alright|sure|whatever i guess $
minimal answer / any / open
    ^ i guess <LIGHT>{0,2} okay|fine|alright $
whatever / any / open
    whatever $
nothing to say / any / open
    nothing|not+much|not+a+lot|little <LIGHT>{0,1} to say|share|talk+about|tell+you|tell
nothing to say / any / open
    ^ no comment|comments $
nothing to say / neg / open
    ^ <ME>? <LIGHT>{0,3} know $
nothing to say / neg / open
    <ME>? <LIGHT>{0,3} know what to say|write|tell+you|add
nothing to say / pos / open
    unsure what to say|write|tell+you|add
holding back / neg / open
    ^ <ME>? <LIGHT>{0,4} talk|talking|discuss|share|sharing|open+up|opening+up|get+into+it|
    go+into+it|say+much|said+much|talk+much|talked+much|said+anything|say+anything
holding back / neg / open
    <ME>? <LIGHT>{0,3} in+the+mood|up+to|up+for <LIGHT>{0,1} talk|talking|sharing|explaining|
    writing|it|this|much
holding back / pos / open
    talk|talking about something+else|other+things|anything+else
holding back / pos / open
    skip|avoid|leave|drop|park that|this|the|those topic|topics|subject|part|stuff|bit
holding back / pos / open
    keep|keeping things|it light|surface+level|on+the+surface
holding back / pos / open
    rather|prefer not? to? <LIGHT>{0,1} say|talk|share|discuss|get+into|go+into|explain
holding back / pos / open
    <ME> <LIGHT>{0,3} stayed|stay|staying|went|go|going quiet|silent|mute
holding back / pos / open
    <ME> <LIGHT>{0,3} kept|keep|keeping quiet|it+to+myself|things+to+myself|to+myself|
    my+mouth+shut|silent
holding back / pos / open
    <ME> <LIGHT>{0,3} held|hold|holding back
holding back / pos / open
    <ME> <LIGHT>{0,3} shut|shutting down
holding back / pos / open
    <ME> <LIGHT>{0,3} zoned|zone|checked|tuned out
holding back / pos / open
    go|going|went through the motions
holding back / pos / open
    <ME> <LIGHT>{0,2} pretended|pretend|pretending|acted that? <LIGHT>{0,1} i|it|everything|
    things was|were|is|am fine|okay
holding back / neg / open
    <ME> <LIGHT>{0,3} bring|brought|mention|mentioned|tell|told it|up|you|what|how|the+real|
    anything
holding back / neg / open
    <ME> <LIGHT>{0,3} open|opened|opening up
holding back / neg / open
    <ME> <LIGHT>{0,3} say|said|tell|told+you what+i+meant|what+i+wanted|what+i+really|the+real|
    how+i+feel|how+i+felt|the+truth|everything
holding back / pos / open
    <ME> <LIGHT>{0,3} should+not+have|should+have+not said|told|mentioned anything|it|that
holding back / pos / open
    easier to <LIGHT>{0,1} say+nothing|agree|keep+quiet|stay+quiet
# round 1 after the held-out evaluation (general rules, see docs/detectors.md)
nothing to say / any / open
    nothing|not+much|little|anything <LIGHT>{0,2} to say|share|add|report|tell|mention|talk+about
nothing to say / any / open
    nothing new|worth|i+want+to+share|much|to+report
nothing to say / alone / open
    ^ nothing|not+much|nope|no|none|fine|na|no+thoughts|no+idea|not+today|no+comment|nothing+really
    $
nothing to say / alone / open
    ^ yeah|yes|okay fine|okay|sure $
nothing to say / neg / open
    <ME>? <LIGHT>{0,3} know what _{0,3} to? say|want+me+to+say|want+to+hear
holding back / pos / open
    skip|pass+on this|that question|one|bit
holding back / pos / open
    no|little point|use in? going+over|discussing|getting+into|bringing+up|thinking+about|
    dwelling+on
holding back / neg / open
    <ME>? <LIGHT>{0,3} remember what+we|the+session|much|anything
holding back / neg / open
    ^ <ME>? <LIGHT>{0,4} write|writing|think+about+it
holding back / pos / open
    rather|prefer not? to? <LIGHT>{0,1} think|write
holding back / pos / open
    leave|drop it there|at+that? $
holding back / pos / open
    keep|kept|keeping it|that|this|things to+myself
holding back / neg / open
    <ME>? <LIGHT>{0,3} feeling|in+the+mood|up+to chatty|talkative|like+talking|like+sharing
holding back / neg / open
    ^ _? <LIGHT>{0,3} worth getting+into|going+into|talking+about|mentioning|your+time
holding back / any / open
    why <ME> <LIGHT>{0,2} answering|filling|bother+answering|doing+these
deferring / pos / you
    whatever|anything works|suits|is+fine for|with you
deferring / pos / open
    one+way+or+the+other|either+way $
it doesn't matter / neg / open
    ^ <LIGHT>{0,1} it|that|this? <LIGHT>{0,4} matter|matters which|what|either
resignation / pos / open
    ^ it|that? is? all the same to+me? $
# round 2
deferring / neg / open
    ^ <ME>? <LIGHT>{0,3} mind $
holding back / pos / open
    leave|drop it $
holding back / pos / open
    rather|prefer <LIGHT>{0,2} not to? <LIGHT>{0,1} say|talk|think|write|share|discuss|get+into|
    go+into
deferring / any / open
    one+way+or+the+other|either+way $
"""
)

RISK = _table(
    """
suicide / any / you
    suicid|suicidal|suicide
kill myself / any / you
    kill|killing|killed|unalive|hang|hanging|shoot|drown|poison myself
end my life / any / you
    end|ending|take|taking|took my own? life
end it all / any / you
    end|ending it all|everything
want to die / any / you
    want|wanted|wanting|wish|ready|going|plan|planning to die
want to die / any / you
    feel+like dying|die
want to die / any / you
    wish|wished|wishing <ME> <LIGHT>{0,2} was|were dead
want to die / any / you
    wish|wished|wishing <ME> <LIGHT>{0,3} disappear|vanish|sleep+forever|not+wake+up|not+exist|
    die|fall+asleep+and+not+wake+up
want to die / any / you
    hope|wish|pray <ME> <LIGHT>{0,2} die|dies|dead|do+not+wake|never+wake|will+not+wake|
    would+not+wake
want to die / any / you
    think|thinking|thought|fantasize|fantasise|fantasising|fantasizing|dream about|of
    not+being+around|not+being+here|not+existing|dying|death|being+dead|being+gone|ending+it|
    ending+things|disappearing
suicidal thoughts or warning signs / neg / you
    life|living <LIGHT>{0,3} worth+living|worth+it
suicidal thoughts or warning signs / pos / you
    not worth living
suicidal thoughts or warning signs / any / you
    tired|sick|exhausted of being+alive|living|existing|life|being+here
suicidal thoughts or warning signs / any / you
    no|not <LIGHT>{0,2} see? a? way+out
want to die / any / you
    rather|better be|being dead|die|gone
want to die / any / you
    better off if|when <ME> _{0,2} gone|dead|not+here|not+around|died|disappeared|never+born
suicidal thoughts or warning signs / any / you
    want|wish|need it|everything|all+of+it|this all? to <LIGHT>{0,1} stop|end|be+over
suicidal thoughts or warning signs / neg / you
    <ME>? <LIGHT>{0,3} see|have|got a|any? future for+me|for+myself
suicidal thoughts or warning signs / neg / you
    <ME>? <LIGHT>{0,3} see|have|got a|any? future $
suicidal thoughts or warning signs / any / you
    <ME> am <LIGHT>{0,2} a+burden|burden+to|such+a+burden
suicidal thoughts or warning signs / any / you
    goodbye|farewell|suicide letter|note|letters|notes
suicidal thoughts or warning signs / any / you
    giving|give|gave away my things|stuff|belongings|possessions
suicidal thoughts or warning signs / any / you
    jump|jumping|jumped off|from the|a? bridge|building|roof|balcony|cliff
suicidal thoughts or warning signs / any / you
    in+front+of a|the train|bus|car|lorry|truck
suicidal thoughts or warning signs / any / you
    wish <ME> <LIGHT>{0,2} was|were|had+been never|not born|alive|here
want to die / any / you
    better off dead|without+me|gone
suicidal thoughts or warning signs / any / you
    better|happier|easier off? without me
suicidal thoughts or warning signs / any / you
    going+to|want+to|will|plan+to|ready+to|planning+to|gonna end|ending it $
want to die / any / you
    easier|better off? if|when <ME> _{0,2} gone|dead|died|disappeared
suicidal thoughts or warning signs / neg / you
    easier|better off? if|when <ME> <LIGHT>{0,2} here|around|alive
suicidal thoughts or warning signs / any / you
    sleep and? never|not wake+up|wake
self-harm / any / you
    relapse|relapsed and? cut|cutting|hurt+myself|harmed|self+harmed
suicidal thoughts or warning signs / any / you
    too many pills|tablets|painkillers|sleeping+pills
want to die / any / you
    ways|way|method|methods|how to die|end+it|end+my+life|kill+myself
suicidal thoughts or warning signs / any / you
    give|giving|gave|given up on life|living
suicidal thoughts or warning signs / any / you
    want|wanted|wish|wanna to? not+exist|not+be+alive|not+be+here|not+wake+up|disappear|vanish|
    stop+existing
suicidal thoughts or warning signs / any / you
    wish <ME> <LIGHT>{0,2} never|not <LIGHT>{0,1} born|been+born|existed
suicidal thoughts or warning signs / neg / you
    <ME>? <LIGHT>{0,3} want|wanted|wish|wanna to? live|exist|be+alive|be+here+anymore|wake+up
suicidal thoughts or warning signs / any / you
    no|nothing reason|point|left to live|for|go+on|keep+going
suicidal thoughts or warning signs / any / you
    nothing|no+one|nobody to live for
suicidal thoughts or warning signs / any / you
    can+not|could+not go+on|take+it+anymore|take+this+anymore|do+this+anymore $
suicidal thoughts or warning signs / any / you
    can+not|could+not go+on|carry+on|keep+going like+this|anymore|living
self-harm / any / you
    hurt|hurting|harm|harming|cut|cutting|burn|burning|punish|punishing|starve|starving|hit|
    hitting myself
self-harm / any / you
    self harm|harming|injury|injure
self-harm / any / you
    selfharm
self-harm / any / you
    cut|cutting|scratch|scratching|burn|burning|hit|hitting|pick|picking my|own arm|arms|wrist|
    wrists|skin|legs|thighs
self-harm / any / you
    relapse|relapsed on|with|into cutting|self+harm|harming|hurting+myself
self-harm / any / you
    cutting|cut again|lately|more
overdose / any / you
    overdose|overdosing|overdosed|od
overdose / any / you
    take|taking|took|swallow|swallowed all <LIGHT>{0,1} my|the? pills|tablets|meds
overdose / any / you
    stockpiling|saving|hoarding|collecting|stockpile|saved up? pills|tablets|meds|painkillers
# round 1 after the held-out evaluation (general rules, see docs/detectors.md)
suicidal thoughts or warning signs / any / you
    point|reason of|in|for living|life|going+on|being+alive|staying+alive
suicidal thoughts or warning signs / neg / you
    reason|point _{0,2} to? live|stay+alive|keep+living|be+alive|go+on|keep+going
want to die / any / you
    better|happier|easier off? if|when <ME> _{0,2} gone|dead|died|disappeared|was+not+here
suicidal thoughts or warning signs / any / you
    how many pills|tablets|painkillers
suicidal thoughts or warning signs / any / you
    driving|drive|crash|crashing|drove into a|the wall|tree|traffic|river
suicidal thoughts or warning signs / any / you
    think|thinking|thought about|of jumping|stepping+off|stepping+in+front|crashing|driving+into
suicidal thoughts or warning signs / any / you
    giving|give|gave away _{0,3} my things|stuff|belongings|possessions
suicidal thoughts or warning signs / any / you
    do|doing something|anything stupid
want to die / any / you
    if <ME> died|disappeared|was+gone|were+gone _{0,2} nobody|no+one
suicidal thoughts or warning signs / any / you
    nobody|no+one would|will care|notice|miss if|when? <ME>
suicidal thoughts or warning signs / neg / you
    <ME> <LIGHT>{0,3} can|could keep+going|go+on|carry+on|cope $
suicidal thoughts or warning signs / any / you
    done with life|living|being+alive|everything|it+all
suicidal thoughts or warning signs / any / you
    planning|planned|plan|thinking+about|thought+about how <ME> <LIGHT>{0,2} do|end it
suicidal thoughts or warning signs / any / you
    <ME> am not safe
self-harm / any / you
    relapse|relapsed _{0,3} razor|blade|blades|cutting|cut
overdose / any / you
    stockpiling|saving|hoarding|collecting|stockpile my|the|up? pills|tablets|meds|painkillers
"""
)


def _words(phrase: str) -> list[str]:
    """The normalised words of a cue or list phrase (one clause, whatever its words)."""
    lowered = phrase.translate(_APOSTROPHES).lower()
    return _rewrite([w for t in _TOKEN.findall(lowered) if t[0].isalnum() for w in _expand(t)])


def _alternatives(spec: str) -> list[tuple[str, ...]]:
    if spec.startswith("<") and spec.endswith(">"):
        return [tuple(_words(p)) for p in SLOTS[spec[1:-1]].split("|") if _words(p)]
    return [tuple(_words(p.replace("+", " "))) for p in spec.split("|")]


_QUANTIFIER = re.compile(r"(\?|\*|\{\d+,\d+\})$")


def _element(spec: str) -> tuple[str, set[str]]:
    """One pattern element as a regex over 'stem stem ' text, and the stems it can start with."""
    if spec == "_":
        return r"[a-z0-9]+ ", set()
    if spec == "^":
        return r"# ", set()
    if spec == "$":
        return r"(?=#)", set()
    options = {"".join(re.escape(stem(w)) + " " for w in words) for words in _alternatives(spec)}
    if "" in options:
        raise ValueError(f"{spec!r}: an alternative is only dropped words (make it optional)")
    ordered = sorted(options, key=len, reverse=True)
    firsts = {o.split(" ")[0] for o in ordered if o}
    return "(?:" + "|".join(ordered) + ")", firsts if "" not in options else set()


@dataclass(frozen=True)
class _Compiled:
    kind: Kind
    label: str
    polarity: str
    target: str
    regex: re.Pattern[str]
    # Each set holds the first stems of one element the cue cannot do without: the cue can
    # only match when every set has a stem in the comment (a cheap test before the regex).
    anchors: tuple[frozenset[str], ...]


def _compile(kind: Kind, cue: Cue) -> _Compiled:
    label, polarity, target, pattern = cue
    parts: list[str] = []
    anchors: list[frozenset[str]] = []
    for raw in pattern.split():
        quantifier = ""
        found = _QUANTIFIER.search(raw)
        if found:
            quantifier = found.group(1)
            raw = raw[: found.start()]
        regex, firsts = _element(raw)
        if raw in ("<LIGHT>", "_"):  # captured: a negation there counts against a pos cue
            parts.append(f"((?:{regex}){quantifier})")
        else:
            parts.append(f"(?:{regex}){quantifier}" if quantifier else regex)
        mandatory = quantifier == "" or quantifier.startswith("{1")
        if mandatory and firsts:
            anchors.append(frozenset(firsts))
    anchors.sort(key=len)
    compiled = re.compile("(?<![a-z0-9])" + "".join(parts))
    return _Compiled(kind, label, polarity, target, compiled, tuple(anchors))


@functools.lru_cache(maxsize=1)
def _cue_index() -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Cues by the stems of their rarest anchor (and the cues without anchors)."""
    index: dict[str, list[int]] = {}
    always: list[int] = []
    for i, cue in enumerate(_compiled()):
        if not cue.anchors:
            always.append(i)
        for stem_ in cue.anchors[0] if cue.anchors else ():
            index.setdefault(stem_, []).append(i)
    return {k: tuple(v) for k, v in index.items()}, tuple(always)


def _active(present: set[str]) -> list[_Compiled]:
    """The cues that can match a comment with these stems, in their written order."""
    index, always = _cue_index()
    candidates = set(always)
    for stem_ in present:
        candidates.update(index.get(stem_, ()))
    cues = _compiled()
    return [
        cues[i]
        for i in sorted(candidates)
        if all(not a.isdisjoint(present) for a in cues[i].anchors[1:])
    ]


@functools.lru_cache(maxsize=1)
def _compiled() -> tuple[_Compiled, ...]:
    return tuple(
        [_compile("risk", c) for c in RISK]
        + [_compile("confrontation", c) for c in CONFRONTATION]
        + [_compile("withdrawal", c) for c in WITHDRAWAL]
    )


@functools.lru_cache(maxsize=1)
def _slots() -> dict[str, re.Pattern[str]]:
    def regex(pattern: str) -> re.Pattern[str]:
        return _compile("confrontation", ("", "any", "you", pattern)).regex

    return {
        "OTHER": regex("<OTHER>"),
        "THERAPY_WORD": regex("<THERAPY_WORD>"),
        "REPORTED": regex(REPORTED),
        "TAKEN_BACK": regex(TAKEN_BACK),
    }


@functools.lru_cache(maxsize=1)
def _stem_sets() -> dict[str, frozenset[str]]:
    return {
        slot: frozenset(stem(w) for words in _alternatives(f"<{slot}>") for w in words)
        for slot in ("NEG", "DOUBT")
    }


# --- spelling -------------------------------------------------------------------------------
# A word of five letters or more that is one edit (insert, delete, replace, swap) away from a
# word of six letters or more that the cues use, and whose stem the cues do not use already, is
# read as that word: "lisening", "theraphy", "sucidal". Shorter words are left alone ("here" is
# not "hear"), and so are forms of known words ("checking" is not "checkin").


@functools.lru_cache(maxsize=1)
def _vocabulary() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    words: set[str] = set()
    texts: list[str] = [c[3] for c in (*CONFRONTATION, *WITHDRAWAL, *RISK)]
    texts.extend(SLOTS[name] for name in SLOTS if name != "OTHER")
    for text in texts:
        for word in re.findall(r"[a-z']+", text.replace("+", " ")):
            words.update(_words(word))
    stems = frozenset(stem(w) for w in words) | frozenset(
        stem(w) for words_ in _alternatives("<OTHER>") for w in words_
    )
    deletes: dict[str, str] = {}
    for word in sorted(words):
        if len(word) >= 6:
            for i in range(len(word)):
                deletes.setdefault(word[:i] + word[i + 1 :], word)
    return frozenset(words), stems, deletes


@functools.lru_cache(maxsize=16384)
def correct(word: str) -> str:
    """The cue word `word` is one typo away from, or `word` itself."""
    known, stems, deletes = _vocabulary()
    if word in known or not word.isalpha() or stem(word) in stems:
        return word
    if len(word) < 5:
        return word
    if word in deletes:  # a letter missing
        return deletes[word]
    for i in range(len(word)):
        shorter = word[:i] + word[i + 1 :]
        if shorter in known and len(shorter) >= 6:  # a letter too many
            return shorter
        if shorter in deletes:  # a letter replaced, or two swapped
            candidate = deletes[shorter]
            if len(candidate) == len(word) and _one_edit(word, candidate):
                return candidate
    return word


def _one_edit(a: str, b: str) -> bool:
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diffs) == 1:
        return True
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clause:
    text: str  # "# stem stem ... # "
    stems: tuple[str, ...]
    words: tuple[str, ...]  # normalised and spell-corrected, not stemmed
    opener: str  # the word that opened the clause ("but"), or ""


def _prepare(text: str) -> tuple[_Clause, ...]:
    out = []
    for opener, words in _clauses(text):
        fixed = tuple(correct(w) for w in words)
        stems = tuple(stem(w) for w in fixed)
        out.append(_Clause("# " + "".join(s + " " for s in stems) + "# ", stems, fixed, opener))
    return tuple(out)


def _negated(before: str, doubt: bool) -> bool:
    sets = _stem_sets()
    return any(w in sets["NEG"] or (doubt and w in sets["DOUBT"]) for w in before.split())


def _polarity_ok(cue: _Compiled, clause: _Clause, start: int, end: int) -> bool:
    if cue.polarity in ("any", "alone", "brief"):
        return True
    return _negated(clause.text[:end], cue.polarity == "doubt")


def _about_others(clause: _Clause) -> bool:
    """The clause names someone or something else and nothing of the therapy."""
    slots = _slots()
    return bool(slots["OTHER"].search(clause.text)) and not slots["THERAPY_WORD"].search(
        clause.text
    )


def _reported(clause: _Clause) -> bool:
    """Someone else's words or view: "my sister says therapy is a waste of money"."""
    return bool(_slots()["REPORTED"].search(clause.text))


def _search(cue: _Compiled, clause: _Clause, minimal: bool, brief: bool) -> tuple[int, int] | None:
    for match in cue.regex.finditer(clause.text):
        start, end = match.span()
        if (cue.polarity == "alone" and not minimal) or (cue.polarity == "brief" and not brief):
            return None
        if cue.polarity == "pos":
            # No negation before the cue, nor in the words its gaps let through: "it was
            # not a waste of time", "you never judge me".
            gaps = " ".join(g for g in match.groups() if g)
            if _negated(clause.text[:start] + " " + gaps, False):
                continue
        elif not _polarity_ok(cue, clause, start, end):
            continue
        return start, end
    return None


def _exact(
    clause: _Clause, phrases: tuple[tuple[str, tuple[str, ...]], ...], negations: frozenset[str]
) -> str | None:
    for phrase, words in phrases:
        n = len(words)
        for i in range(len(clause.words) - n + 1):
            if clause.words[i : i + n] != words:
                continue
            if negations and any(w in negations for w in clause.words[max(0, i - 3) : i]):
                continue
            return phrase
    return None


@functools.lru_cache(maxsize=64)
def _phrase_words(phrases: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((p, tuple(_words(p))) for p in phrases if _words(p))


@functools.lru_cache(maxsize=64)
def _negation_words(extra: tuple[str, ...]) -> frozenset[str]:
    return _NEGATION_WORDS | frozenset(w for n in extra for w in _words(n))


_NEGATION_WORDS = frozenset(["not", "no", "never", "hardly", "barely", "nor", "without"])
_ORDER: tuple[Kind, ...] = ("risk", "confrontation", "withdrawal")
_PRONOUNS = frozenset({"it", "that", "this", "which"})
_THANKS = frozenset({"thank", "thanks", "cheer", "cheers", "great", "good"})


def read(text: str, cues: ExactCues = NO_CUES) -> Reading:
    """The markers in an English comment: for each kind, the cue of the first one found.

    Per clause, risk cues first, then confrontation, then withdrawal; a clause read as
    confrontation gives no withdrawal cue (one clause, one act). A complaint taken back by
    the next clause ("I didn't expect it to help, but it did") does not count."""
    return _read(text, cues)


@functools.lru_cache(maxsize=4096)
def _read(text: str, cues: ExactCues) -> Reading:
    prepared = _prepare(text)
    found: dict[Kind, str] = {}
    if not prepared:
        # Punctuation or a shrug only: a minimal answer (3RS withdrawal), if anything at all.
        return Reading(withdrawal="nothing to say" if text.strip() else None)
    present = {s for clause in prepared for s in clause.stems}
    active = _active(present)
    negations = _negation_words(cues.negations)
    exact: dict[Kind, tuple[tuple[str, tuple[str, ...]], ...]] = {
        "confrontation": _phrase_words(cues.confrontation),
        "withdrawal": _phrase_words(cues.withdrawal),
        "risk": _phrase_words(cues.risk),
    }
    # A minimal answer: three words or fewer, and no thanks (thanking is engagement).
    words = sum(len(clause.words) for clause in prepared)
    minimal = words <= 3 and not present & _THANKS
    brief = words <= cues.brief_words
    for index, clause in enumerate(prepared):
        taken_back = index + 1 < len(prepared) and _taken_back(prepared[index + 1])
        others = _about_others(clause) or (
            # "Cancelled my gym membership, it was a waste of money": "it" is the gym.
            index > 0
            and clause.stems[0] in _PRONOUNS
            and _about_others(prepared[index - 1])
            and not _slots()["THERAPY_WORD"].search(clause.text)
        )
        reported = _reported(clause)
        in_clause: set[Kind] = set()
        for kind in _ORDER:
            if kind in found:
                continue
            if kind != "risk" and (reported or "risk" in in_clause):
                continue
            if kind == "withdrawal" and "confrontation" in in_clause:
                continue
            if kind == "confrontation" and taken_back:
                continue
            label = None
            for cue in active:
                if (
                    cue.kind == kind
                    and not (cue.target == "open" and others)
                    and _search(cue, clause, minimal, brief) is not None
                ):
                    label = cue.label
                    break
            if label is None and exact[kind]:
                if kind == "risk":
                    label = _exact(clause, exact[kind], frozenset())
                elif not others:
                    label = _exact(clause, exact[kind], negations)
            if label is not None:
                found[kind] = label
                in_clause.add(kind)
    if "confrontation" in found:
        # One rupture kind per comment, confrontation first (as the detectors' rupture type):
        # "I don't know why I keep coming, nothing changes" is a complaint, and its
        # resignation is the complaint's ("whatever, you won't get it anyway").
        found.pop("withdrawal", None)
    return Reading(found.get("confrontation"), found.get("withdrawal"), found.get("risk"))


def _taken_back(clause: _Clause) -> bool:
    return (
        clause.opener in _CONTRAST
        and bool(_slots()["TAKEN_BACK"].search(clause.text))
        and not _negated(clause.text, False)
    )
