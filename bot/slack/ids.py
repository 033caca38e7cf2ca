"""Every Slack identifier in one home; a test checks manifest.yml and the blocks against it."""

COMMAND = "/rootcheck"
ACK_ACTION = "rootcheck_ack"
REMEDIATION_ACTION = "rootcheck_remediation"
FINDING_EVENT = "rootcheck_finding"
DIGEST_EVENT = "rootcheck_digest"
SUMMARY_EVENT = "rootcheck_summary"  # the activity summary reply in a session's thread
REPLY_EVENT = "rootcheck_reply"  # other thread replies: found again after a crash by their reply id
CONFIRM_YES_ACTION = "rootcheck_confirm_yes"  # "Yes, this was planned" in an owner's direct message
CONFIRM_NO_ACTION = "rootcheck_confirm_no"  # "No, I don't recognise it"
CONFIRM_VIEW = "rootcheck_confirm_reason"  # the modal asking why (callback_id)
QUESTION_EVENT = "rootcheck_question"  # a direct message asking an owner: found again after a crash

# The bot scopes the code uses, each for one reason (the README justifies them):
BOT_SCOPES = (
    "chat:write",  # post alerts, update them on ack, thread replies, ephemeral answers
    "commands",  # the /rootcheck slash command
    "channels:read",  # conversations.info / conversations.members: is the bot in, who may ack
    "groups:read",  # the same for private alert channels
    "channels:history",  # conversations.history: reconcile posts after a crash (metadata)
    "groups:history",  # the same for private alert channels
    "usergroups:read",  # usergroups.users.list: expand ROOTCHECK_ADMINS groups and owner groups
    "users:read",  # needed with users:read.email
    "users:read.email",  # users.lookupByEmail: owners given by email address
    "im:write",  # conversations.open: a direct message to each owner ("was this you?")
    "im:history",  # conversations.history of those direct messages: find a question sent before a crash
)
