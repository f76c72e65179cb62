from __future__ import annotations

from signalhooks import counter, invalidate, post_save, touch, track

from .models import Comment, Hooked, HookedChanged, Ruled, Tracked


@post_save(Hooked)
def after_save(sender, instance, **kwargs):
    pass


@post_save(HookedChanged, changed="status")
def after_status(sender, instance, **kwargs):
    pass


track(Tracked, "name", "status")
invalidate(Ruled, keys=["ruled:{pk}", "ruled:list"], tags=["ruled", "status:{status}"])
counter(Comment, "post", "comment_count")
touch(Comment, "post", "updated_at")
