"""`foreman tui`: the owner's console, a Textual app that is a pure client of a running
`foreman serve` (its HTTP API and event stream, through `foreman.client`), so it works
against a remote server with a token.

    model.py     what the console knows (pure: events and answers in, transcripts out)
    render.py    how that reads on screen (pure: Rich text)
    link.py      the link to the server: the event stream across outages, reads of state
    app.py       the app: its workers, bindings and actions
    widgets.py   header, conversation list, transcript, log, chat input
    approval.py  the approval prompt
    screens.py   help, no server, place a call, confirm
    command.py   the `foreman tui` command
"""
