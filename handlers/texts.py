"""Client- and therapist-facing texts in one place (a practice can override them later)."""

INVITATION_ONLY = (
    "Hello! This bot works by invitation only. If your therapist or practice gave you a link, "
    "please open that link to start."
)
ALREADY_LINKED = "You're already connected to Rapport. There's nothing more to do here."
THERAPIST_LINKED = (
    "Your Telegram account is now linked to Rapport. You will get alerts about your clients here."
)
CLIENT_WELCOME = (
    "Welcome! Your therapist has invited you to brief check-ins between sessions. "
    "When one is due, it arrives here; answering takes under a minute, with a few taps.\n\n"
    "Please note: these answers are not monitored in real time. "
    "If you need urgent help, contact your local emergency services."
)
CHECKIN_CLOSED = "This check-in is closed."
NOT_YOURS = "This button isn't for you."
THANKS = "Thank you! Your answers are saved. Your therapist will see them before your next session."
SAVED = "Saved"
USE_BUTTONS = "Please use the buttons above to answer, or wait for your next check-in."
SOMETHING_WRONG = "Something went wrong on our side. Please try again in a moment."
COMMENT_PROMPT = (
    "Anything you'd like your therapist to know before next time? Type it here, or tap "
    '"No comment".'
)
NO_COMMENT_BUTTON = "No comment"
COMMENT_CUT = "Thank you! Your comment was long, so only its first {limit} characters were saved."
