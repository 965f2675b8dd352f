"""Broadcasting: recurring programmes (lịch phát), the arbiter that decides what plays when classes
collide, live relay, and the as-run log of what actually played. Programmes, their .ics, their
commands made ahead of time and their overlaps are here; the rest is to come. Not to be confused with
hub.delivery.release, which releases one-off `start_at` commands.

Layer: above content (a programme plays content), below reports and the interfaces.
"""
