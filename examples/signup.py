"""Sign-up as a workflow: create the user, email a link, wait (durably) for the click.

The ``run`` handler runs once per e-mail address (the workflow key). It waits on the durable
promise ``email.clicked`` — for seconds or for weeks, across restarts — while the shared
handlers ``click`` and ``getStatus`` run next to it.

Run it with ``perdure dev examples/signup.py``, then::

    curl localhost:8080/SignUp/ada@example.com/run/send \\
        --json '{"name": "Ada", "email": "ada@example.com"}'
    curl localhost:8080/SignUp/ada@example.com/getStatus
    # the "email" (printed by the server process) carries the secret to click with:
    curl localhost:8080/SignUp/ada@example.com/click --json '"SECRET"'
    curl localhost:8080/restate/workflow/SignUp/ada@example.com/attach
"""

from __future__ import annotations

from dataclasses import dataclass

import perdure


@dataclass
class NewUser:
    name: str
    email: str


@dataclass
class Email:
    to: str
    link_secret: str


#: The e-mails "sent" by this process (a stand-in for a mail provider), newest last.
outbox: list[Email] = []
#: The users "created" (a stand-in for a user database), by e-mail address.
users: dict[str, str] = {}

signup = perdure.Workflow("SignUp", description="Sign-up with e-mail verification.")


def create_user(user: NewUser) -> str:
    users.setdefault(user.email, f"user-{len(users) + 1}")
    return users[user.email]


def send_email(to: str, secret: str) -> None:
    outbox.append(Email(to, secret))
    print(f"[mail] to {to}: confirm with  curl .../SignUp/{to}/click --json '\"{secret}\"'")


@signup.main()
async def run(ctx: perdure.WorkflowContext, user: NewUser) -> bool:
    ctx.set("status", "creating user")
    user_id = await ctx.run("create user", create_user, user)
    ctx.set("user_id", user_id)

    # ctx.uuid() is deterministic: a replay after a crash draws the same secret.
    secret = str(ctx.uuid())
    ctx.set("status", "sending email")
    await ctx.run("send email", send_email, user.email, secret)

    ctx.set("status", "waiting for click")
    clicked = await ctx.promise("email.clicked", type_hint=str).value()
    verified = clicked == secret
    ctx.set("status", "verified" if verified else "wrong secret")
    return verified


@signup.handler()
async def click(ctx: perdure.WorkflowSharedContext, secret: str) -> None:
    """Resolves the promise the run handler waits on (once; a second click is refused)."""
    await ctx.promise("email.clicked", type_hint=str).resolve(secret)


@signup.handler(name="getStatus")
async def get_status(ctx: perdure.WorkflowSharedContext) -> str:
    return await ctx.get("status", type_hint=str) or "not started"


services = [signup]

if __name__ == "__main__":
    perdure.serve(services, port=9080)
