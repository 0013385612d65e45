"""GraphQL errors that say what REST would say, naming the argument at fault.

Every error the client can act on carries `extensions.status`, the status REST answers for the same
mistake: 422 a malformed argument (`extensions.errors`: one {parameter, message} each, as REST's 422),
400 a name GPUBroker does not know or paging past the end, 404 an offer it does not have, 429 over the
plan (graphql_api.limits), 503 with `retry_after` when the database cannot answer. A value GraphQL
itself cannot read (an Int past 32 bits, an enum name it does not have) is refused by validation, its
message led by the argument's path (`filters.per_page: Int cannot represent ...`). Anything else is
masked as "Unexpected error." and logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, ValueNode
from graphql.language.visitor import SKIP
from graphql.utilities import validate_input_literal
from graphql.validation import ValuesOfCorrectTypeRule
from ninja.errors import HttpError
from pydantic import ValidationError
from strawberry.extensions import SchemaExtension

from gpubroker_web import db, responses


def invalid(error: ValidationError, argument: str | None = None) -> GraphQLError:
    """A malformed argument, named as the client wrote it (`filters.min_gpu_count`)."""
    errors = [{"parameter": ".".join(map(str, ((argument,) if argument else ()) + e["loc"])), "message": e["msg"]}
              for e in error.errors()]  # fmt: skip
    return GraphQLError("; ".join(f"{e['parameter']}: {e['message']}" for e in errors),
                        extensions={"status": 422, "errors": errors})  # fmt: skip


def refused(argument: str | None, message: str, status: int = 400) -> GraphQLError:
    """A well-formed argument naming something GPUBroker does not know (400) or have (404)."""
    return GraphQLError(f"{argument}: {message}" if argument else message, extensions={"status": status})


@contextlib.contextmanager
def answering(argument: str | None = None) -> Iterator[None]:
    """What REST answers 422, 400, 404 or 503, as a GraphQL error saying the same; `argument` names
    the argument a pydantic model or a REST helper read (None: the model's fields are the arguments)."""
    try:
        yield
    except ValidationError as error:
        raise invalid(error, argument) from None
    except HttpError as error:  # a REST helper's refusal (analytics.api.canonical: an unknown GPU)
        raise refused(argument, error.message, error.status_code) from None
    except responses.REFUSED as failure:
        answer = responses.refusal(failure)
        retry = {"retry_after": db.RETRY_AFTER_SECONDS} if answer.status == 503 else {}
        raise GraphQLError(answer.detail, extensions={"status": answer.status, **retry}) from None


def unexpected(error: GraphQLError) -> bool:
    """A failure of ours, not the client's: masked in the answer, logged."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class NamedValuesRule(ValuesOfCorrectTypeRule):
    """GraphQL's check of literal values, each error led by the argument's path (`filters.page: ...`)."""

    argument: str | None = None

    def enter_argument(self, node, *_: Any) -> None:
        self.argument = node.name.value

    def leave_argument(self, *_: Any) -> None:
        self.argument = None

    def is_valid_value_node(self, node: ValueNode, input_type) -> Any:
        if input_type:

            def named(error: GraphQLError, path: list[str | int]) -> None:
                where = ".".join(map(str, [self.argument, *path] if self.argument else path))
                self.report_error(GraphQLError(f"{where}: {error.message}" if where else error.message, error.nodes))

            validate_input_literal(node, input_type, named, hide_suggestions=self.context.hide_suggestions)
        return SKIP


class NamedValues(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        rules = self.execution_context.validation_rules
        self.execution_context.validation_rules = tuple(NamedValuesRule if r is ValuesOfCorrectTypeRule else r for r in rules)
        yield
