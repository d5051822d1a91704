"""Response and request models: they document the real behaviour in the OpenAPI document.

Handlers validate request bodies themselves (to answer Adobe-style 400s that name fields with their
index), so the request models here only describe the body; the response models are enforced.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CompanyContext(BaseModel):
    namespace: str = Field(description="One entry must be imsOrgID with the x-gw-ims-org-id value.")
    value: str


class UserIdIn(BaseModel):
    namespace: str
    value: str
    type: Literal[
        "standard", "custom", "integrationCode", "namespaceId", "unregistered", "analytics", "target"
    ]
    isDeletedClientSide: bool = False


class UserIn(BaseModel):
    key: str
    action: list[Literal["access", "delete"]] = Field(min_length=1)
    userIDs: list[UserIdIn] = Field(min_length=1, max_length=9)


class PrivacyJobRequest(BaseModel):
    """Body of ``POST /data/core/privacy/jobs`` (reference 2.1)."""

    companyContexts: list[CompanyContext] = Field(min_length=1)
    users: list[UserIn] = Field(min_length=1, max_length=1000)
    include: list[str] = Field(min_length=1, description="Product codes, case-insensitive.")
    regulation: str
    expandIds: bool | None = None
    priority: Literal["normal", "low"] | None = None
    mergePolicyId: int | str | None = None
    analyticsDeleteMethod: Literal["anonymize", "purge"] | None = None
    region: str | None = None
    requestId: str | None = None


class HygieneUserIdIn(UserIdIn):
    type: Literal["standard", "custom"]


class HygieneUserIn(BaseModel):
    key: str
    action: list[Literal["delete"]] = Field(min_length=1)
    userIDs: list[HygieneUserIdIn] = Field(min_length=1, max_length=9)


class HygieneJobRequest(BaseModel):
    """Body of the legacy beta record delete ``POST /data/core/hygiene/jobs`` (reference 11.4)."""

    companyContexts: list[CompanyContext] | None = None
    users: list[HygieneUserIn] = Field(min_length=1, max_length=1000)


class ConsentEntity(BaseModel):
    nameSpace: str = Field(description="A standard namespace (note the capital S).")
    values: list[str] = Field(min_length=1)


class ConsentRequest(BaseModel):
    """Body of ``POST /data/core/privacy/consent`` (reference 6)."""

    optOutOfSale: bool
    entities: list[ConsentEntity] = Field(min_length=1)
    requestId: str | None = None
    transactionId: str | None = None
    orgId: str | None = None


class UserIdOut(BaseModel):
    namespace: str
    value: str
    type: str
    namespaceId: int | None = None
    isDeletedClientSide: bool


class CreatedUser(BaseModel):
    key: str
    action: list[str]
    userIDs: list[UserIdOut]


class CreatedCustomer(BaseModel):
    user: CreatedUser


class CreatedJob(BaseModel):
    jobId: str
    customer: CreatedCustomer


class CreatedJobsResponse(BaseModel):
    requestId: str
    totalRecords: int
    requestStatus: int | None = None
    jobs: list[CreatedJob]


class JobBasic(BaseModel):
    jobId: str
    requestId: str
    userKey: str
    action: str
    status: Literal["submitted", "processing", "complete", "error"]
    submittedBy: str
    createdDate: str = Field(description="MM/dd/yyyy hh:mm AM|PM GMT")
    lastModifiedDate: str


class JobListResponse(BaseModel):
    totalRecords: int = Field(description="Jobs matching the query across all pages.")
    jobDetails: list[JobBasic]


class ProductStatusResponse(_Open):
    status: str
    message: str | None = None
    responseMsgCode: str | None = None
    responseMsgDetail: str | None = None
    results: dict[str, Any] | None = None


class ProductResponse(BaseModel):
    product: str
    retryCount: int
    processedDate: str | None = None
    productStatusResponse: ProductStatusResponse


class PrivacyJobDetail(JobBasic):
    userIds: list[UserIdOut]
    productResponses: list[ProductResponse]
    regulation: str
    downloadUrl: str | None = Field(
        default=None,
        description="Only for complete access jobs (every job with adobe_known_bugs); the default spelling.",
    )
    downloadURL: str | None = Field(
        default=None, description="The same link when download_url_key is downloadURL; never both."
    )


class HygieneJobDetail(JobBasic):
    userIds: list[UserIdOut]
    sandboxName: str | None = None


class Quota(BaseModel):
    name: str
    description: str
    consumed: int
    quota: int


class QuotaResponse(BaseModel):
    quotas: list[Quota]


class WorkOrderNamespace(BaseModel):
    code: str


class WorkOrderIdentities(BaseModel):
    namespace: WorkOrderNamespace
    IDs: list[str] = Field(min_length=1)


class WorkOrderRequest(BaseModel):
    """``POST /data/core/hygiene/workorder`` (Adobe's workorder guide); validated by hand, 400 on errors."""

    displayName: str
    description: str | None = None
    action: Literal["delete_identity", "delete-identity"]
    datasetId: str = Field(description="ALL or a dataset id (24 hexadecimal characters).")
    namespacesIdentities: list[WorkOrderIdentities] = Field(min_length=1)


class WorkOrderUpdate(BaseModel):
    """``PUT /data/core/hygiene/workorder/{id}``: the docs' ``name`` (the OAS's ``displayName`` also works)."""

    name: str | None = None
    displayName: str | None = None
    description: str | None = None
