"""``suara demo``: a scripted field day played through the real bot and the local Bot API emulator.

Modules: `script` (the field day as data), `steps` (what each step does in the chat and checks),
`player` (runs the bot, drives scripted users, waits on conditions), `printer` (the conversation as
text), `media` (the shipped JPEG/OGG assets), `report` (export bundles and the summary), `run` (all of it).
"""
