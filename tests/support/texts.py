"""Short texts in two languages, long enough to pass the cleaning checks, shared by the
tests of the quality rules and of the cleaning asset."""

ENGLISH = (
    "The committee met on Tuesday to review the budget for the coming year. Members agreed that "
    "the library should have longer opening hours, and that the money for it would come from the "
    "reserve fund. A final vote is planned for the next meeting, which will be held in the town hall "
    "with the public invited to attend and to ask questions about the plan."
)
FRENCH = (
    "Le conseil municipal s'est réuni mardi pour examiner le budget de l'année prochaine. Les membres "
    "ont convenu que la bibliothèque devrait ouvrir plus longtemps, et que l'argent viendrait du fonds "
    "de réserve. Un vote final est prévu pour la prochaine réunion, qui aura lieu à la mairie, et le "
    "public est invité à y assister et à poser des questions sur le projet."
)
