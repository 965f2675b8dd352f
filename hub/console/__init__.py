"""The console: the web pages operators and editors use, in Vietnamese. (Built by the console
issue; empty now.)

Layer: an interface beside hub.api and hub.cli; it reads and writes through the layers below.
"""
