"""HTTP without a web framework: the clients of the API and the training host, and the one
table between the project's errors and HTTP status codes that both servers and both clients use.
"""
