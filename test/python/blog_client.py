"""A Python client of blog-service, using code generated from proto/.

Usage: PYTHONPATH=<generated code> python3 blog_client.py HOST:PORT

Creates a user and a post, reads the user with posts, checks one error
status, deletes the user and checks that the post went with them, then
watches the users' changes from a listing taken before it all (list, then
watch). Prints one line per step and exits non-zero on the first unexpected
answer.
"""

import sys

import grpc

from blog.v1 import change_pb2, post_pb2, post_service_pb2, post_service_pb2_grpc
from blog.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

TIMEOUT = 10  # seconds: the deadline of every call


def expect(condition, what):
    if not condition:
        sys.exit(f"unexpected answer: {what}")


def failure(call):
    """failure runs call, which must fail, and returns its status code and message."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details()
    sys.exit("expected the call to fail, but it succeeded")


def main(address):
    with grpc.insecure_channel(address) as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        posts = post_service_pb2_grpc.PostServiceStub(channel)
        # The point to watch from: every change committed after this listing.
        watch_token = users.ListUsers(user_service_pb2.ListUsersRequest(page_size=1), timeout=TIMEOUT).watch_token

        user = users.CreateUser(
            user_service_pb2.CreateUserRequest(user=user_pb2.User(name="Grace Hopper", age=85)),
            timeout=TIMEOUT,
        ).user
        expect(user.id > 0 and user.name == "Grace Hopper" and user.age == 85, f"CreateUser: {user}")
        print(f"created user {user.id}: {user.name}, {user.age}")

        post = posts.CreatePost(
            post_service_pb2.CreatePostRequest(post=post_pb2.Post(user_id=user.id, title="COBOL", content="...")),
            timeout=TIMEOUT,
        ).post
        expect(post.id > 0 and post.user_id == user.id, f"CreatePost: {post}")
        print(f"created post {post.id}: {post.title}")

        full = users.GetUser(
            user_service_pb2.GetUserRequest(id=user.id, view=user_pb2.USER_VIEW_FULL), timeout=TIMEOUT
        ).user
        titles = [p.title for p in full.posts]
        expect(full.name == "Grace Hopper" and titles == ["COBOL"], f"GetUser FULL: {full}")
        print(f"user {full.id} has posts {titles}")

        missing = user.id + 1_000_000
        code, message = failure(lambda: users.GetUser(user_service_pb2.GetUserRequest(id=missing), timeout=TIMEOUT))
        expect(code == grpc.StatusCode.NOT_FOUND, f"GetUser of a missing id: {code}")
        expect(message == f"user {missing} not found", f"GetUser of a missing id: {message!r}")
        print(f"GetUser {missing}: {code.name}: {message}")

        users.DeleteUser(user_service_pb2.DeleteUserRequest(id=user.id), timeout=TIMEOUT)
        print(f"deleted user {user.id}")

        code, message = failure(lambda: posts.GetPost(post_service_pb2.GetPostRequest(id=post.id), timeout=TIMEOUT))
        expect(code == grpc.StatusCode.NOT_FOUND, f"GetPost after DeleteUser: {code}")
        print(f"GetPost {post.id}: {code.name}: {message}")

        # WatchUsers from the listing's token replays what came since, then waits for more (a heartbeat
        # every 10 s); a client that keeps the last resume_token resumes after a disconnect.
        watch = users.WatchUsers(user_service_pb2.WatchUsersRequest(resume_token=watch_token), timeout=TIMEOUT)
        seen = []
        for message in watch:
            seen += [(change_pb2.ChangeType.Name(c.type), c.user.id) for c in message.changes]
            if ("CHANGE_TYPE_DELETED", user.id) in seen:
                watch.cancel()
                break
        expect(seen == [("CHANGE_TYPE_CREATED", user.id), ("CHANGE_TYPE_DELETED", user.id)], f"WatchUsers: {seen}")
        print(f"watched user {user.id}: {', '.join(kind for kind, _ in seen)}")


if __name__ == "__main__":
    main(sys.argv[1])
